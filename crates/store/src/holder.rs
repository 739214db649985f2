//! Who is doing the work: the identity of a campaignd process, written on every run it records and on
//! every lease it holds, so that a later process can tell whether that one is still alive.
//!
//! An id reads `host:pid:start:nonce`: the host name, the process id, the process's start time (clock
//! ticks since boot, field 22 of Linux `/proc/PID/stat`; `0` where there is no `/proc`) and a random part
//! (pids repeat across restarts). A holder is **provably dead** only when it names this host and, on a
//! system with `/proc`, that pid does not exist, is a zombie, or belongs to a process that started at a
//! different time (the pid was reused). Anything else — another host, no `/proc` — is judged by its
//! heartbeat instead. Replicas that share a host name must therefore share a pid namespace (on
//! containers, give each its own host name, as Kubernetes and Docker do by default).

use std::sync::OnceLock;

/// One process's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Process start time in clock ticks since boot, `0` when unknown.
    pub start: u64,
    /// Random part, distinguishing processes whose pid and start coincide across reboots.
    pub nonce: u32,
}

impl Holder {
    /// This process, computed once.
    pub fn current() -> &'static Holder {
        static CURRENT: OnceLock<Holder> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let pid = std::process::id();
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            Holder {
                host: host_name(),
                pid,
                start: process_start(pid).map(|(start, _)| start).unwrap_or(0),
                nonce: nanos ^ pid.rotate_left(16),
            }
        })
    }

    /// The id stored in the database: `host:pid:start:nonce`.
    pub fn id(&self) -> String {
        format!(
            "{}:{}:{}:{:08x}",
            self.host, self.pid, self.start, self.nonce
        )
    }

    /// Reads an id written by [`Holder::id`]; `None` for anything else (ids of older versions).
    pub fn parse(id: &str) -> Option<Holder> {
        let mut parts = id.rsplitn(4, ':');
        let nonce = u32::from_str_radix(parts.next()?, 16).ok()?;
        let start = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_string();
        (!host.is_empty()).then_some(Holder {
            host,
            pid,
            start,
            nonce,
        })
    }

    /// True only when this holder is certainly not running: it names this host, and `/proc` shows its
    /// pid gone, a zombie, or reused by a process with another start time. Never true for this process.
    pub fn is_provably_dead(&self) -> bool {
        let me = Holder::current();
        if self.host != me.host || me.start == 0 || self == me {
            return false;
        }
        if self.pid == me.pid && self.start == me.start {
            // Same process, another nonce: impossible unless the id was forged; not provable.
            return false;
        }
        match process_start(self.pid) {
            None => !std::path::Path::new(&format!("/proc/{}", self.pid)).exists(),
            Some((_, 'Z')) => true,
            Some((start, _)) => self.start != 0 && start != self.start,
        }
    }
}

/// The host name, as the kernel knows it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "host".into())
}

/// The start time (ticks since boot) and state letter of process `pid`, from `/proc/PID/stat`.
fn process_start(pid: u32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Parses `/proc/PID/stat`: the command name (field 2) is in parentheses and may hold spaces or
/// parentheses itself, so fields are counted from the last `)`. State is field 3, start time field 22.
fn parse_stat(stat: &str) -> Option<(u64, char)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_old_ids_do_not_parse() {
        let h = Holder {
            host: "web-1.example".into(),
            pid: 4242,
            start: 987_654,
            nonce: 0xdead_beef,
        };
        assert_eq!(h.id(), "web-1.example:4242:987654:deadbeef");
        assert_eq!(Holder::parse(&h.id()), Some(h));
        for bad in ["", "host:12:abcd1234", "a:b:c:d", ":1:2:3", "h:1:2:zz"] {
            assert_eq!(Holder::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(stat), Some((987_654, 'S')));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn liveness_of_this_process_a_dead_child_and_another_host() {
        let me = Holder::current();
        assert!(!me.is_provably_dead());
        if me.start == 0 {
            eprintln!("no /proc: only heartbeats can tell");
            return;
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder { pid, ..me.clone() };
        assert!(dead.is_provably_dead());
        let reused = Holder {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(
            reused.is_provably_dead(),
            "this pid, another start time: an earlier process whose pid was reused"
        );
        let other_start = Holder {
            pid: 1,
            start: 1,
            ..me.clone()
        };
        // pid 1 exists but started at another time unless it really started at tick 1.
        let init_start = process_start(1).map(|(s, _)| s);
        assert_eq!(other_start.is_provably_dead(), init_start != Some(1));
        let elsewhere = Holder {
            host: format!("{}-other", me.host),
            pid,
            ..me.clone()
        };
        assert!(!elsewhere.is_provably_dead());
    }
}
