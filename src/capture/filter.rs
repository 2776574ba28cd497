//! The kernel-side filter: a classic BPF program generated from the doors and the interface's
//! addresses, so that only packets that can be a knock ever wake the daemon.
//!
//! It runs on a cooked packet socket, where offset 0 is the network header and the ethertype
//! and packet type come from the kernel's ancillary fields. A packet passes only if all of
//! these hold, each checked in the kernel:
//! - its packet type is to this host, broadcast or multicast: never `PACKET_OTHERHOST` (a
//!   frame for another MAC on a promiscuous interface) nor `PACKET_OUTGOING`;
//! - it is IPv4 or IPv6 (also behind one VLAN tag the kernel left in place), TCP or UDP, and a
//!   first or only fragment;
//! - its destination is an address some door is aimed at: the interface's own addresses for
//!   doors without `Target`, the `Target` for the others;
//! - for one of those doors, its port is a port of the door's sequence of that protocol, or
//!   (with the sweep guard) within the guard window of one, and, for TCP, its flags pass the
//!   door's `TCPFlags`. That is exactly what the tracker acts on ([`tracker::watches`]): a
//!   sweep that could advance a door crosses the ports next to the door's ports with the same
//!   kind of probe, so those are all the guard needs; ACKs and RSTs of ordinary connections
//!   to a `syn,!ack` door's ports stay in the kernel.
//! - IPv6 packets to those addresses with extension headers pass whatever their ports (the
//!   parser walks the headers in user space; they are rare).
//!
//! Everything else (ordinary traffic, routed traffic, other addresses) is dropped in the
//! kernel. [`run`] interprets a program the way the kernel does, so tests check the real
//! program against crafted packets before the kernel ever sees it.
//!
//! [`tracker::watches`]: crate::tracker::watches

use crate::config::{Door, Proto, TcpFlags};
use crate::spa;
use crate::tracker::Rules;
use std::net::IpAddr;
use std::rc::Rc;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LD_B_IND: u16 = 0x50;
const LDX_IMM: u16 = 0x01;
const LDX_B_MSH: u16 = 0xb1;
const ADD_K: u16 = 0x04;
const AND_K: u16 = 0x54;
const TAX: u16 = 0x07;
const TXA: u16 = 0x87;
const JA: u16 = 0x05;
const JEQ: u16 = 0x15;
const JGT: u16 = 0x25;
const JGE: u16 = 0x35;
const JSET: u16 = 0x45;
const RET: u16 = 0x06;

/// `SKF_AD_OFF + SKF_AD_PROTOCOL`: the ethertype, in host order.
const AD_PROTOCOL: u32 = 0xffff_f000;
/// `SKF_AD_OFF + SKF_AD_PKTTYPE`.
const AD_PKTTYPE: u32 = 0xffff_f004;
/// `PACKET_OTHERHOST`: packet types from this one up (other host, outgoing, loopback copies)
/// are never knocks; below it are host, broadcast and multicast.
pub const PACKET_OTHERHOST: u8 = 3;
/// Bytes handed to user space for an accepted packet (all of it, as tcpdump does).
pub const ACCEPT: u32 = 0x0004_0000;
/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// IPv6 next-header values the filter lets through to the parser (hop-by-hop, routing,
/// fragment, AH, destination options, mobility, HIP, shim6).
const IPV6_EXT: [u32; 8] = [0, 43, 44, 51, 60, 135, 139, 140];

/// What the doors aimed at one group of destination addresses accept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Class {
    /// The destination addresses (those of one family are compared in the kernel).
    pub addrs: Vec<IpAddr>,
    /// TCP: per distinct flag test, the inclusive port ranges it applies to (sorted, merged).
    pub tcp: Vec<(TcpFlags, Vec<(u16, u16)>)>,
    /// UDP: inclusive port ranges (sorted, merged).
    pub udp: Vec<(u16, u16)>,
    /// UDP ports of SPA doors (sorted): only datagrams that can be SPA pass (payload length
    /// and first byte checked in the kernel).
    pub spa: Vec<u16>,
}

/// Everything a filter is generated from: one [`Class`] per set of doors that a destination
/// address is watched for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// Classes with at least one address, in a stable order.
    pub classes: Vec<Class>,
}

/// Groups the live doors by the addresses they are aimed at: `local` (the interface's own
/// addresses) for doors without `Target`, the `Target` for the others. A port is watched if
/// it is a step of that protocol, or (sweep guard) within `rules.sweep_window` of one.
pub fn spec(doors: &[Rc<Door>], rules: &Rules, local: &[IpAddr], ipv6: bool) -> Spec {
    let mut addrs: Vec<IpAddr> = local.to_vec();
    addrs.extend(doors.iter().filter_map(|d| d.target));
    addrs.retain(|a| ipv6 || a.is_ipv4());
    addrs.sort_unstable();
    addrs.dedup();
    // The doors aimed at each address; addresses with the same doors share a class.
    let mut groups: Vec<(Vec<usize>, Vec<IpAddr>)> = Vec::new();
    for a in addrs {
        let aimed: Vec<usize> = (0..doors.len())
            .filter(|&d| doors[d].is_live())
            .filter(|&d| match doors[d].target {
                Some(t) => t == a,
                None => local.contains(&a),
            })
            .collect();
        if aimed.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|g| g.0 == aimed) {
            Some(g) => g.1.push(a),
            None => groups.push((aimed, vec![a])),
        }
    }
    let w = if rules.sweep_guard {
        rules.sweep_window
    } else {
        0
    };
    let classes = groups
        .into_iter()
        .map(|(aimed, addrs)| {
            let mut c = Class {
                addrs,
                ..Class::default()
            };
            for d in aimed.iter().map(|&d| &doors[d]) {
                for step in &d.sequence {
                    let r = (step.port.saturating_sub(w), step.port.saturating_add(w));
                    match step.proto {
                        Proto::Udp => c.udp.push(r),
                        Proto::Tcp => match c.tcp.iter_mut().find(|t| t.0 == d.flags) {
                            Some(t) => t.1.push(r),
                            None => c.tcp.push((d.flags, vec![r])),
                        },
                    }
                }
            }
            merge(&mut c.udp);
            for t in &mut c.tcp {
                merge(&mut t.1);
            }
            // A test without bits passes every packet: checked first, it answers most often.
            // (There is at most one, flags being unique; the others keep their order.)
            if let Some(i) = c.tcp.iter().position(|t| (t.0.set | t.0.clear) == 0) {
                c.tcp[..=i].rotate_right(1);
            }
            c
        })
        .collect();
    Spec { classes }
}

/// Adds the SPA doors' UDP `ports` (sorted) to the classes of the interface's own addresses
/// (an SPA packet is aimed at the host itself), with a class of their own for the local
/// addresses no knock door is aimed at.
pub fn add_spa(spec: &mut Spec, ports: &[u16], local: &[IpAddr], ipv6: bool) {
    if ports.is_empty() {
        return;
    }
    let mut rest: Vec<IpAddr> = local
        .iter()
        .copied()
        .filter(|a| ipv6 || a.is_ipv4())
        .collect();
    let mut out = Vec::with_capacity(spec.classes.len() + 1);
    for mut c in spec.classes.drain(..) {
        let (mine, others): (Vec<IpAddr>, Vec<IpAddr>) =
            c.addrs.iter().partition(|a| local.contains(a));
        if mine.is_empty() {
            out.push(c);
            continue;
        }
        rest.retain(|a| !mine.contains(a));
        if !others.is_empty() {
            out.push(Class {
                addrs: others,
                ..c.clone()
            });
        }
        c.addrs = mine;
        c.spa = ports.to_vec();
        out.push(c);
    }
    rest.sort_unstable();
    rest.dedup();
    if !rest.is_empty() {
        out.push(Class {
            addrs: rest,
            spa: ports.to_vec(),
            ..Class::default()
        });
    }
    spec.classes = out;
}

fn merge(r: &mut Vec<(u16, u16)>) {
    r.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(r.len());
    for &(lo, hi) in r.iter() {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    *r = out;
}

/// Where a jump's offset goes once its label is placed.
#[derive(Clone, Copy)]
enum Field {
    K,
    Jf,
}

/// A tiny assembler: forward jumps to labels, resolved at the end.
struct Asm {
    code: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Field, usize)>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            code: Vec::new(),
            labels: Vec::new(),
            fixups: Vec::new(),
        }
    }

    fn op(&mut self, code: u16, k: u32) {
        self.code.push(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }

    fn ja(&mut self, l: usize) {
        self.fixups.push((self.code.len(), Field::K, l));
        self.op(JA, 0);
    }

    /// If `A <cond> k`, go to `l` (a short skip over a long jump, so blocks may be any size).
    fn jump_if(&mut self, cond: u16, k: u32, l: usize) {
        self.code.push(Insn {
            code: cond,
            jt: 0,
            jf: 1,
            k,
        });
        self.ja(l);
    }

    /// Unless `A == k`, go to the nearby label `l` (within 255 instructions).
    fn unless_eq(&mut self, k: u32, l: usize) {
        self.fixups.push((self.code.len(), Field::Jf, l));
        self.op(JEQ, k);
    }

    /// Goes to `tcp` or `udp` by the protocol number at `off` (IPv4's protocol or IPv6's next
    /// header); falls through for anything else.
    fn by_protocol(&mut self, off: u32, tcp: usize, udp: usize) {
        self.op(LD_B_ABS, off);
        self.jump_if(JEQ, 6, tcp);
        self.jump_if(JEQ, 17, udp);
    }

    /// If `A == k`, accept the packet.
    fn accept_if(&mut self, k: u32) {
        self.code.push(Insn {
            code: JEQ,
            jt: 0,
            jf: 1,
            k,
        });
        self.op(RET, ACCEPT);
    }

    /// If `lo <= A <= hi`, go to `l` (with `l` = `None`: accept).
    fn in_range(&mut self, (lo, hi): (u16, u16), l: Option<usize>) {
        if lo == hi {
            match l {
                Some(l) => self.jump_if(JEQ, lo as u32, l),
                None => self.accept_if(lo as u32),
            }
            return;
        }
        self.code.push(Insn {
            code: JGE,
            jt: 0,
            jf: 2,
            k: lo as u32,
        });
        self.code.push(Insn {
            code: JGT,
            jt: 1,
            jf: 0,
            k: hi as u32,
        });
        match l {
            Some(l) => self.ja(l),
            None => self.op(RET, ACCEPT),
        }
    }

    /// The program, or `None` if a short jump would not reach its label.
    fn finish(mut self) -> Option<Vec<Insn>> {
        for (at, field, l) in self.fixups {
            let off = self.labels[l]?.checked_sub(at + 1)?;
            let i = &mut self.code[at];
            match field {
                Field::K => i.k = off as u32,
                Field::Jf => i.jf = u8::try_from(off).ok()?,
            }
        }
        Some(self.code)
    }
}

/// How much of the spec a program checks: everything, or (when that would pass the kernel's
/// size limit) addresses and protocols only, or only that it is incoming TCP or UDP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    Full,
    Addresses,
    Any,
}

/// Generates the filter for `spec`; IPv6 is left out with `ipv6 = false` (knockd's `-4`).
/// Should the doors have so many ports or addresses that the program would pass the kernel's
/// limit, the filter checks less (the destination only, then nothing but the protocol): the
/// daemon checks everything again in user space, so that is correct, only slower.
pub fn program(spec: &Spec, ipv6: bool) -> Vec<Insn> {
    for depth in [Depth::Full, Depth::Addresses] {
        if let Some(p) = assemble(spec, ipv6, depth).filter(|p| p.len() <= MAX_INSNS) {
            return p;
        }
    }
    assemble(spec, ipv6, Depth::Any).unwrap_or_default()
}

fn assemble(spec: &Spec, ipv6: bool, depth: Depth) -> Option<Vec<Insn>> {
    let mut a = Asm::new();
    let [v4, v6, vlan, v4t, v6t] = [(); 5].map(|_| a.label());
    a.op(LD_W_ABS, AD_PKTTYPE);
    a.code.push(Insn {
        code: JGE,
        jt: 0,
        jf: 1,
        k: PACKET_OTHERHOST as u32,
    });
    a.op(RET, 0);
    a.op(LD_W_ABS, AD_PROTOCOL);
    a.jump_if(JEQ, 0x0800, v4);
    if ipv6 {
        a.jump_if(JEQ, 0x86dd, v6);
    }
    a.jump_if(JEQ, 0x8100, vlan);
    a.jump_if(JEQ, 0x88a8, vlan);
    a.op(RET, 0);
    a.here(vlan);
    a.op(LD_H_ABS, 2);
    a.jump_if(JEQ, 0x0800, v4t);
    if ipv6 {
        a.jump_if(JEQ, 0x86dd, v6t);
    }
    a.op(RET, 0);
    let n = if depth == Depth::Any {
        1
    } else {
        spec.classes.len()
    };
    // Per class, one TCP and one UDP block, shared by the plain and the tagged layouts: both
    // reach them with X = offset of the transport header.
    let tcp: Vec<usize> = (0..n).map(|_| a.label()).collect();
    let udp: Vec<usize> = (0..n).map(|_| a.label()).collect();
    for (base, l4, l6) in [(0u32, v4, v6), (4, v4t, v6t)] {
        a.here(l4);
        a.op(LD_H_ABS, base + 6);
        a.code.push(Insn {
            code: JSET,
            jt: 0,
            jf: 1,
            k: 0x1fff,
        });
        a.op(RET, 0); // a later fragment: no ports to look at
        a.op(LDX_B_MSH, base);
        if base != 0 {
            a.op(TXA, 0);
            a.op(ADD_K, base);
            a.op(TAX, 0);
        }
        let dispatch: Vec<usize> = (0..n).map(|_| a.label()).collect();
        if depth == Depth::Any {
            a.ja(dispatch[0]);
        } else {
            a.op(LD_W_ABS, base + 16);
            for (c, class) in spec.classes.iter().enumerate() {
                for addr in &class.addrs {
                    if let IpAddr::V4(v) = addr {
                        a.jump_if(JEQ, u32::from(*v), dispatch[c]);
                    }
                }
            }
            a.op(RET, 0);
        }
        for c in 0..n {
            a.here(dispatch[c]);
            a.by_protocol(base + 9, tcp[c], udp[c]);
            a.op(RET, 0);
        }
        a.here(l6);
        if ipv6 {
            a.op(LDX_IMM, base + 40);
            let dispatch: Vec<usize> = (0..n).map(|_| a.label()).collect();
            if depth == Depth::Any {
                a.ja(dispatch[0]);
            } else {
                for (c, class) in spec.classes.iter().enumerate() {
                    for addr in &class.addrs {
                        let IpAddr::V6(v) = addr else { continue };
                        let w = v.octets();
                        let next = a.label();
                        for i in 0..4 {
                            let word = u32::from_be_bytes([
                                w[4 * i],
                                w[4 * i + 1],
                                w[4 * i + 2],
                                w[4 * i + 3],
                            ]);
                            a.op(LD_W_ABS, base + 24 + 4 * i as u32);
                            if i < 3 {
                                a.unless_eq(word, next);
                            } else {
                                a.jump_if(JEQ, word, dispatch[c]);
                            }
                        }
                        a.here(next);
                    }
                }
                a.op(RET, 0);
            }
            for c in 0..n {
                a.here(dispatch[c]);
                a.by_protocol(base + 6, tcp[c], udp[c]);
                for ext in IPV6_EXT {
                    a.accept_if(ext);
                }
                a.op(RET, 0);
            }
        }
        a.op(RET, 0);
    }
    if depth != Depth::Full {
        for c in 0..n {
            a.here(tcp[c]);
            a.here(udp[c]);
        }
        a.op(RET, ACCEPT);
        return a.finish();
    }
    for (c, class) in spec.classes.iter().enumerate() {
        a.here(tcp[c]);
        a.op(LD_H_IND, 2);
        for (flags, ranges) in &class.tcp {
            let mask = (flags.set | flags.clear) as u32;
            if mask == 0 {
                for &r in ranges {
                    a.in_range(r, None);
                }
                continue;
            }
            let (test, next) = (a.label(), a.label());
            for &r in ranges {
                a.in_range(r, Some(test));
            }
            a.ja(next);
            // The port is watched for this test: pass if the flags pass it, else reload the
            // port and try the next test.
            a.here(test);
            a.op(LD_B_IND, 13);
            a.op(AND_K, mask);
            a.accept_if(flags.set as u32);
            a.op(LD_H_IND, 2);
            a.here(next);
        }
        a.op(RET, 0);
        a.here(udp[c]);
        a.op(LD_H_IND, 2);
        for &r in &class.udp {
            a.in_range(r, None);
        }
        if !class.spa.is_empty() {
            let spa = a.label();
            for &p in &class.spa {
                a.jump_if(JEQ, p as u32, spa);
            }
            a.op(RET, 0);
            // An SPA datagram: UDP length within fwknop's payload bounds, and a first payload
            // byte an SPA packet can start with (see spa::wire::looks_like_spa).
            a.here(spa);
            a.op(LD_H_IND, 4);
            a.code.push(Insn {
                code: JGE,
                jt: 0,
                jf: 1,
                k: 8 + spa::wire::MIN_PAYLOAD as u32,
            });
            a.code.push(Insn {
                code: JGT,
                jt: 0,
                jf: 1,
                k: 8 + spa::wire::MAX_PAYLOAD as u32,
            });
            a.op(RET, 0);
            a.op(LD_B_IND, 8);
            for b in [b'8', b'9', b'+', b'/', b'U'] {
                a.accept_if(b as u32);
            }
        }
        a.op(RET, 0);
    }
    a.finish()
}

mod interp;
#[cfg(test)]
mod tests;

pub use interp::run;
