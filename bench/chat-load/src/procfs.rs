//! What the harness reads from /proc (memory and CPU of the processes under
//! test) and the open-file limit it raises for itself.

use std::fs;

/// Raises RLIMIT_NOFILE's soft limit to the hard one (and the hard one too
/// when allowed, e.g. as root); returns the soft limit now in force.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    const WANTED: libc::rlim_t = 1 << 20;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let raised = libc::rlimit {
            rlim_cur: WANTED.max(limit.rlim_max),
            rlim_max: WANTED.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return Ok(raised.rlim_cur);
        }
        // Not privileged: as far as the hard limit goes.
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// A process's resident set (VmRSS) in KiB, if it is alive.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// A process's peak resident set (VmHWM) in KiB.
pub fn hwm_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

/// This process's own resident set in KiB.
pub fn own_rss_kib() -> Option<u64> {
    rss_kib(std::process::id())
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// CPU time (user + system) of a process and its waited-for children, in
/// clock ticks. PostgreSQL's backends come and go: counting the reaped
/// children keeps their work in the sum.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields are counted after its ')'.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14-17, i.e. 11-14 after ')'.
    let sum = fields
        .get(11..15)?
        .iter()
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Some(sum)
}

/// CPU ticks of several processes, plus those of their live children
/// (PostgreSQL's backends), summed.
pub fn cpu_ticks_of(pids: &[u32]) -> u64 {
    let mut total: u64 = pids.iter().filter_map(|&pid| cpu_ticks(pid)).sum();
    if pids.is_empty() {
        return 0;
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return total;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pids.contains(&pid) {
            continue;
        }
        if let Some((ppid, ticks)) = parent_and_own_ticks(pid)
            && pids.contains(&ppid)
        {
            total += ticks;
        }
    }
    total
}

fn parent_and_own_ticks(pid: u32) -> Option<(u32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// Clock ticks per second (sysconf(_SC_CLK_TCK)).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// The whole machine's CPU ticks so far: (busy, total).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)?;
    let total = busy + v.get(3)? + v.get(4)? + v.get(7).copied().unwrap_or(0);
    Some((busy, total))
}

/// Number of CPUs this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
