//! The kernel-side filter: a classic BPF program generated from the doors, so that only
//! candidate packets ever wake the daemon.
//!
//! It runs on a cooked packet socket, where offset 0 is the network header and the
//! ethertype and packet type come from the kernel's ancillary fields. It accepts:
//! - incoming (never outgoing) IPv4/IPv6, also behind one VLAN tag the kernel left in place;
//! - TCP or UDP (a first or only fragment) to a port of some door's sequence;
//! - with the sweep guard, TCP without ACK to a port within the guard window of a sequence
//!   port (scans cross those; established traffic carries ACK and stays out);
//! - IPv6 packets with extension headers, which the parser walks in user space (rare).
//!
//! UDP to any other port, ICMP, return traffic of connections: dropped in the kernel.
//! [`run`] interprets a program the way the kernel does, so tests check the real program
//! against crafted packets before the kernel ever sees it.

use crate::config::{flag, Door, Proto};
use crate::spa;
use crate::tracker::Rules;
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
const PACKET_OUTGOING: u32 = 4;
/// Bytes handed to user space for an accepted packet (all of it, as tcpdump does).
pub const ACCEPT: u32 = 0x0004_0000;
/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// The ports the filter lets through, derived from the doors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ports {
    /// Ports of TCP steps, sorted, no duplicates.
    pub tcp: Vec<u16>,
    /// Ports of UDP steps, sorted, no duplicates.
    pub udp: Vec<u16>,
    /// Inclusive port ranges watched by the sweep guard, sorted and merged.
    pub guard: Vec<(u16, u16)>,
    /// UDP ports of SPA doors: only datagrams that can be SPA pass (payload length and
    /// first byte checked in the kernel).
    pub spa: Vec<u16>,
}

/// Collects the candidate ports of the live doors.
pub fn ports(doors: &[Rc<Door>], rules: &Rules) -> Ports {
    let mut p = Ports::default();
    for step in doors.iter().flat_map(|d| d.sequence.iter()) {
        match step.proto {
            Proto::Tcp => p.tcp.push(step.port),
            Proto::Udp => p.udp.push(step.port),
        }
        if rules.sweep_guard {
            let w = rules.sweep_window;
            p.guard
                .push((step.port.saturating_sub(w), step.port.saturating_add(w)));
        }
    }
    for v in [&mut p.tcp, &mut p.udp] {
        v.sort_unstable();
        v.dedup();
    }
    p.guard.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(p.guard.len());
    for (lo, hi) in p.guard.drain(..) {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    p.guard = merged;
    p
}

/// A tiny assembler: forward jumps to labels, resolved at the end.
struct Asm {
    code: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
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
        self.fixups.push((self.code.len(), l));
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

    fn finish(mut self) -> Vec<Insn> {
        for (at, l) in self.fixups {
            let target = self.labels[l].unwrap_or(at + 1);
            self.code[at].k = (target - at - 1) as u32;
        }
        self.code
    }
}

/// Generates the filter for `ports`; IPv6 is left out with `ipv6 = false` (knockd's `-4`).
/// Should the doors have so many ports that the program would pass the kernel's limit, the
/// filter lets every TCP and UDP packet through instead (correct, only slower).
pub fn program(ports: &Ports, ipv6: bool) -> Vec<Insn> {
    let p = assemble(Some(ports), ipv6);
    if p.len() <= MAX_INSNS {
        p
    } else {
        assemble(None, ipv6)
    }
}

fn assemble(ports: Option<&Ports>, ipv6: bool) -> Vec<Insn> {
    let mut a = Asm {
        code: Vec::new(),
        labels: Vec::new(),
        fixups: Vec::new(),
    };
    let [v4, v6, vlan, v4t, v6t, tcp, udp] = [(); 7].map(|_| a.label());
    a.op(LD_W_ABS, AD_PKTTYPE);
    a.code.push(Insn {
        code: JEQ,
        jt: 0,
        jf: 1,
        k: PACKET_OUTGOING,
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
    // Both the plain and the tagged layout end with X = offset of the transport header, so
    // one TCP block and one UDP block serve them all.
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
        a.op(LD_B_ABS, base + 9);
        a.jump_if(JEQ, 6, tcp);
        a.jump_if(JEQ, 17, udp);
        a.op(RET, 0);
        a.here(l6);
        if ipv6 {
            a.op(LDX_IMM, base + 40);
            a.op(LD_B_ABS, base + 6);
            a.jump_if(JEQ, 6, tcp);
            a.jump_if(JEQ, 17, udp);
            for ext in [0, 43, 44, 51, 60, 135, 139, 140] {
                a.accept_if(ext);
            }
        }
        a.op(RET, 0);
    }
    let Some(ports) = ports else {
        a.here(tcp);
        a.here(udp);
        a.op(RET, ACCEPT);
        return a.finish();
    };
    a.here(tcp);
    a.op(LD_H_IND, 2);
    for &p in &ports.tcp {
        a.accept_if(p as u32);
    }
    if !ports.guard.is_empty() {
        let probe = a.label();
        for &(lo, hi) in &ports.guard {
            a.code.push(Insn {
                code: JGE,
                jt: 0,
                jf: 2,
                k: lo as u32,
            });
            a.code.push(Insn {
                code: JGT,
                jt: 1,
                jf: 0,
                k: hi as u32,
            });
            a.ja(probe);
        }
        a.op(RET, 0);
        a.here(probe);
        a.op(LD_B_IND, 13);
        a.code.push(Insn {
            code: JSET,
            jt: 0,
            jf: 1,
            k: flag::ACK as u32,
        });
        a.op(RET, 0);
        a.op(RET, ACCEPT);
    }
    a.op(RET, 0);
    a.here(udp);
    a.op(LD_H_IND, 2);
    for &p in &ports.udp {
        a.accept_if(p as u32);
    }
    if !ports.spa.is_empty() {
        let spa = a.label();
        for &p in &ports.spa {
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
        for c in [b'8', b'9', b'+', b'/', b'U'] {
            a.accept_if(c as u32);
        }
    }
    a.op(RET, 0);
    a.finish()
}

/// Runs `prog` over a packet as the kernel would on a cooked socket: `pkt` starts at the
/// network header; `ethertype` and `pkttype` are the ancillary fields. Returns the number of
/// bytes to accept (0 = drop). Loads outside the packet drop it, as in the kernel.
pub fn run(prog: &[Insn], ethertype: u16, pkttype: u8, pkt: &[u8]) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let load = |off: u32, size: usize| -> Option<u32> {
        match off {
            AD_PROTOCOL => Some(ethertype as u32),
            AD_PKTTYPE => Some(pkttype as u32),
            _ => {
                let o = off as usize;
                let b = pkt.get(o..o.checked_add(size)?)?;
                Some(b.iter().fold(0u32, |v, &c| (v << 8) | c as u32))
            }
        }
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let v = match i.code {
            LD_W_ABS => load(i.k, 4),
            LD_H_ABS => load(i.k, 2),
            LD_B_ABS => load(i.k, 1),
            LD_H_IND => load(x.wrapping_add(i.k), 2),
            LD_B_IND => load(x.wrapping_add(i.k), 1),
            LDX_IMM => {
                x = i.k;
                continue;
            }
            LDX_B_MSH => {
                let Some(b) = load(i.k, 1) else { return 0 };
                x = (b & 0xf) * 4;
                continue;
            }
            TAX => {
                x = a;
                continue;
            }
            TXA => Some(x),
            ADD_K => Some(a.wrapping_add(i.k)),
            JA => {
                pc += i.k as usize;
                continue;
            }
            JEQ | JGT | JGE | JSET => {
                let t = match i.code {
                    JEQ => a == i.k,
                    JGT => a > i.k,
                    JGE => a >= i.k,
                    _ => a & i.k != 0,
                };
                pc += if t { i.jt } else { i.jf } as usize;
                continue;
            }
            RET => return i.k,
            _ => return 0,
        };
        match v {
            Some(v) => a = v,
            None => return 0,
        }
    }
    0
}

#[cfg(test)]
mod tests;
