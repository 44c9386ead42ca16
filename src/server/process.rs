//! The standard Prometheus process metrics, read from `/proc` at scrape time (Linux; elsewhere
//! they are left out).

use super::metrics::Reading;

/// (name, help, value) for resident and virtual memory, CPU time and open file descriptors.
pub fn gauges() -> Vec<Reading> {
    let mut out = Vec::new();
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf only reads a configuration value.
        let (page, ticks) = unsafe {
            (
                libc::sysconf(libc::_SC_PAGESIZE) as f64,
                libc::sysconf(libc::_SC_CLK_TCK) as f64,
            )
        };
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let mut f = statm
                .split_whitespace()
                .map(|v| v.parse::<f64>().unwrap_or(0.0));
            let (size, resident) = (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0));
            out.push(Reading {
                name: "process_resident_memory_bytes",
                help: "Resident memory size in bytes.",
                value: resident * page,
            });
            out.push(Reading {
                name: "process_virtual_memory_bytes",
                help: "Virtual memory size in bytes.",
                value: size * page,
            });
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name; utime and stime are the 12th and
            // 13th of them.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                if ticks > 0.0 {
                    out.push(Reading {
                        name: "process_cpu_seconds_total",
                        help: "Total user and system CPU time spent in seconds.",
                        value: (t(11) + t(12)) / ticks,
                    });
                }
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            out.push(Reading {
                name: "process_open_fds",
                help: "Number of open file descriptors.",
                value: fds.count() as f64,
            });
        }
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass and nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            out.push(Reading {
                name: "process_max_fds",
                help: "Maximum number of open file descriptors.",
                value: lim.rlim_cur as f64,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let g = super::gauges();
        let get = |n: &str| g.iter().find(|x| x.name == n).map(|x| x.value);
        assert!(get("process_resident_memory_bytes").unwrap() > 1e6);
        assert!(get("process_open_fds").unwrap() >= 3.0);
        assert!(get("process_cpu_seconds_total").unwrap() >= 0.0);
    }
}
