//! A classic BPF interpreter for the programs this module generates: tests (and the fuzzers)
//! run the real program over crafted packets, exactly as the kernel would, before the kernel
//! ever sees it.

use super::*;

/// Runs `prog` over a packet as the kernel would on a cooked socket: `pkt` starts at the
/// network header; `ethertype` and `pkttype` are the ancillary fields. Returns the number of
/// bytes to accept (0 = drop). Loads outside the packet drop it, as in the kernel; so does
/// an opcode it does not know (the generator uses no other).
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
            AND_K => Some(a & i.k),
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
