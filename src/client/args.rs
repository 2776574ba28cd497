//! The command line of `latchkey knock`: knock's options, fwknop's SPA options, and the
//! saved-host options, declared with argh ([`KnockArgs`]); [`KnockArgs::check`] then turns
//! them into [`Args`], what the rest of the client uses.
//!
//! Getopt forms (`-uvd200`, `--delay=200`, `-p62201`) reach argh through `cli::getopt`; argh
//! itself reads options after the host and ports too, as GNU getopt does.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use argh::{ArgsInfo, FromArgs};

use super::resolve::Family;
use super::sequence::{self, Knock};

/// send a knock sequence (knock's command line), or an fwknop SPA packet with --spa
#[derive(FromArgs, ArgsInfo, Debug, Default, PartialEq, Eq)]
#[argh(
    subcommand,
    name = "knock",
    help_triggers("-h", "--help"),
    example = "{command_name} -d 200 home.example.net 7000 8000:udp 9000",
    example = "{command_name} home                  (a saved host)",
    example = "{command_name} --spa -A tcp/22 -a 192.0.2.2 --key-base64-rijndael K \
               --key-base64-hmac H router.example.net",
    example = "{command_name} -n router             (a stanza of ~/.fwknoprc)",
    note = "Operands: HOST PORT[:tcp|:udp]... to knock, a saved host NAME alone, or HOST \
            alone with --spa. Saved hosts: ~/.config/latchkey/knock.conf, then \
            /etc/latchkey/knock.conf (Windows: %APPDATA%, then %ProgramData%).",
    error_code(1, "the door stayed closed (--check), or a packet could not be sent"),
    error_code(2, "a mistake on the command line or in a saved-hosts or rc file")
)]
pub struct KnockArgs {
    /// bare ports are UDP (default TCP)
    #[argh(switch, short = 'u')]
    udp: bool,
    /// wait MS milliseconds between knocks (not after the last)
    #[argh(option, short = 'd', arg_name = "ms", from_str_fn(delay))]
    delay: Option<u32>,
    /// knock over IPv4 only
    #[argh(switch, short = '4')]
    ipv4: bool,
    /// knock over IPv6 only
    #[argh(switch, short = '6')]
    ipv6: bool,
    /// say what is sent; report network errors
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// after knocking, connect to PORT; knock again while it stays closed
    #[argh(option, short = 'c', arg_name = "port", from_str_fn(check_port))]
    check: Option<u16>,
    /// read saved hosts from FILE only
    #[argh(option, short = 'F', arg_name = "file")]
    file: Option<PathBuf>,
    /// list saved hosts (with -v: what each sends)
    #[argh(switch, short = 'l')]
    list: bool,
    /// print the version
    #[argh(switch, short = 'V')]
    version: bool,
    /// send one fwknop SPA packet instead of a knock sequence
    #[argh(switch)]
    spa: bool,
    /// SPA: what to open, PROTO/PORT[,PROTO/PORT...] (fwknop's -A)
    #[argh(option, short = 'A', arg_name = "proto/port")]
    access: Option<String>,
    /// SPA: the address to let in (IPv4, fwknop's -a)
    #[argh(option, short = 'a', arg_name = "ip", from_str_fn(allow_ip))]
    allow_ip: Option<Ipv4Addr>,
    /// SPA: let in the address the packet comes from (allow IP 0.0.0.0)
    #[argh(switch, short = 's')]
    source_ip: bool,
    /// SPA: ask for SECONDS of access (message type 3)
    #[argh(option, short = 'f', arg_name = "seconds", from_str_fn(fw_timeout))]
    fw_timeout: Option<u32>,
    /// SPA: the server's UDP port (default 62201)
    #[argh(option, short = 'p', arg_name = "port", from_str_fn(server_port))]
    server_port: Option<u16>,
    /// SPA: the server host (fwknop's -D; or give HOST as an operand)
    #[argh(option, short = 'D', arg_name = "host")]
    destination: Option<String>,
    /// SPA: encryption key, base64 (access.conf's KEY_BASE64)
    #[argh(option, arg_name = "b64")]
    key_base64_rijndael: Option<String>,
    /// SPA: HMAC key, base64 (access.conf's HMAC_KEY_BASE64)
    #[argh(option, arg_name = "b64")]
    key_base64_hmac: Option<String>,
    /// SPA: encryption key as a passphrase (access.conf's KEY)
    #[argh(option, arg_name = "text")]
    key_rijndael: Option<String>,
    /// SPA: HMAC key as a passphrase (access.conf's HMAC_KEY)
    #[argh(option, arg_name = "text")]
    key_hmac: Option<String>,
    /// SPA: the user name sent in the packet (default: $USER)
    #[argh(option, short = 'U', arg_name = "name")]
    spoof_user: Option<String>,
    /// SPA: take the settings of stanza NAME of ~/.fwknoprc
    #[argh(option, short = 'n', arg_name = "name")]
    named_config: Option<String>,
    /// SPA: read FILE instead of ~/.fwknoprc
    #[argh(option, arg_name = "file")]
    rc_file: Option<PathBuf>,
    /// HOST PORT[:tcp|:udp]..., a saved NAME, or HOST with --spa
    #[argh(positional, arg_name = "operand")]
    operands: Vec<String>,
}

impl crate::cli::Getopt for KnockArgs {
    const SHORT_VALUED: &'static str = "dcFAafpDUn";
    const LONG_VALUED: &'static [&'static str] = &[
        "delay",
        "check",
        "file",
        "access",
        "allow-ip",
        "fw-timeout",
        "server-port",
        "destination",
        "key-base64-rijndael",
        "key-base64-hmac",
        "key-rijndael",
        "key-hmac",
        "spoof-user",
        "named-config",
        "rc-file",
    ];
}

fn delay(text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("bad delay '{text}': expected milliseconds, 0..4294967295"))
}

fn check_port(text: &str) -> Result<u16, String> {
    sequence::parse_port_number(text, "check port")
}

fn server_port(text: &str) -> Result<u16, String> {
    sequence::parse_port_number(text, "server port")
}

fn fw_timeout(text: &str) -> Result<u32, String> {
    super::spa::parse_timeout(text)
}

fn allow_ip(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("bad allow IP '{text}': expected an IPv4 address (fwknop's -a)"))
}

/// The SPA part of the command line, as typed (checked against the rc file and saved host
/// in `spa`, where the three sources are merged).
#[derive(Debug, Default, PartialEq, Eq, Clone)]
pub struct SpaArgs {
    /// `--spa`, or an option that only SPA has (`-n`).
    pub wanted: bool,
    /// `-A`.
    pub access: Option<String>,
    /// `-a`, or `-s` as `0.0.0.0`.
    pub allow: Option<Ipv4Addr>,
    /// `-f`.
    pub fw_timeout: Option<u32>,
    /// `-p`.
    pub port: Option<u16>,
    /// `--key-base64-rijndael`.
    pub key_b64: Option<String>,
    /// `--key-base64-hmac`.
    pub hmac_b64: Option<String>,
    /// `--key-rijndael`.
    pub key: Option<String>,
    /// `--key-hmac`.
    pub hmac: Option<String>,
    /// `-U`.
    pub user: Option<String>,
    /// `-n`.
    pub named: Option<String>,
    /// `--rc-file`.
    pub rc_file: Option<PathBuf>,
}

/// Everything the user asked for; `None` means "not given" so a saved host's value applies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// `-u`: bare ports are UDP.
    pub udp: bool,
    /// `-d MS`: pause between knocks.
    pub delay_ms: Option<u32>,
    /// `-4` / `-6`.
    pub family: Option<Family>,
    /// `-v`.
    pub verbose: bool,
    /// `--check PORT`.
    pub check: Option<u16>,
    /// `-F FILE`: the saved-hosts file to use instead of the default ones.
    pub file: Option<PathBuf>,
    /// `-l` / `--list`.
    pub list: bool,
    /// HOST, or the saved NAME when no ports follow.
    pub host: Option<String>,
    /// The knocks given on the command line.
    pub ports: Vec<Knock>,
    /// The SPA options.
    pub spa: SpaArgs,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `-V`.
    Version,
    /// Knock or list.
    Run(Box<Args>),
}

impl KnockArgs {
    /// Checks what argh cannot: option combinations and the operands.
    pub fn check(self) -> Result<Command, String> {
        if self.version {
            return Ok(Command::Version);
        }
        let family = match (self.ipv4, self.ipv6) {
            (true, true) => return Err("-4 and -6 exclude each other".to_string()),
            (true, false) => Some(Family::V4),
            (false, true) => Some(Family::V6),
            (false, false) => None,
        };
        if self.source_ip && self.allow_ip.is_some() {
            return Err("-s and -a exclude each other".to_string());
        }
        let spa = SpaArgs {
            wanted: self.spa || self.named_config.is_some(),
            access: self.access,
            allow: self
                .allow_ip
                .or(self.source_ip.then_some(Ipv4Addr::UNSPECIFIED)),
            fw_timeout: self.fw_timeout,
            port: self.server_port,
            key_b64: self.key_base64_rijndael,
            hmac_b64: self.key_base64_hmac,
            key: self.key_rijndael,
            hmac: self.key_hmac,
            user: self.spoof_user,
            named: self.named_config,
            rc_file: self.rc_file,
        };
        let mut operands = self.operands.into_iter();
        let mut host = operands.next();
        let ports: Vec<Knock> = operands
            .map(|p| sequence::parse_knock(&p))
            .collect::<Result<_, _>>()?;
        if let Some(d) = self.destination {
            if host.is_some() {
                return Err("-D names the host already: give no HOST operand".to_string());
            }
            host = Some(d);
        }
        if self.list && host.is_some() {
            return Err("--list takes no host or ports".to_string());
        }
        if spa.wanted && !ports.is_empty() {
            return Err("--spa sends one packet: give HOST alone (and -A for the ports)".into());
        }
        // `-n NAME` may take the host from the rc file's SPA_SERVER.
        if !self.list && host.is_none() && spa.named.is_none() {
            return Err("missing HOST and ports (or a saved host NAME)".to_string());
        }
        Ok(Command::Run(Box::new(Args {
            udp: self.udp,
            delay_ms: self.delay,
            family,
            verbose: self.verbose,
            check: self.check,
            file: self.file,
            list: self.list,
            host,
            ports,
            spa,
        })))
    }
}

#[cfg(test)]
mod tests;
