//! Where the CPU went during a phase, from `/proc`: calltrail's, PostgreSQL's (all its
//! processes), the load generator's own, and the whole machine's. Per request, these are
//! costs that do not depend on what else the machine was doing, which throughput does.

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Cumulative CPU times at one instant, in ticks.
pub struct CpuSample {
    calltrail: u64,
    postgres: u64,
    generator: u64,
    machine_busy: u64,
    machine_total: u64,
}

/// CPU used between two samples.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuUse {
    pub calltrail_s: f64,
    pub postgres_s: f64,
    pub generator_s: f64,
    pub machine_busy_s: f64,
    pub machine_total_s: f64,
    pub cores: usize,
}

impl CpuUse {
    /// The share of the machine's CPU time that was busy.
    pub fn busy_fraction(&self) -> f64 {
        self.machine_busy_s / self.machine_total_s.max(f64::MIN_POSITIVE)
    }

    /// The share of the busy time used by neither calltrail, PostgreSQL nor the generator.
    pub fn others_fraction(&self) -> f64 {
        let ours = self.calltrail_s + self.postgres_s + self.generator_s;
        ((self.machine_busy_s - ours) / self.machine_busy_s.max(f64::MIN_POSITIVE)).max(0.0)
    }
}

impl CpuSample {
    /// `database`: the PostgreSQL database under test, if any.
    pub fn take(calltrail_pid: u32, database: &str) -> Self {
        let (machine_busy, machine_total) = machine();
        CpuSample {
            calltrail: process_ticks(&format!("/proc/{calltrail_pid}/stat")).unwrap_or(0),
            postgres: postgres_ticks(database),
            generator: process_ticks("/proc/self/stat").unwrap_or(0),
            machine_busy,
            machine_total,
        }
    }

    pub fn since(&self, before: &CpuSample) -> CpuUse {
        let seconds = |now: u64, then: u64| now.saturating_sub(then) as f64 / TICKS_PER_SECOND;
        CpuUse {
            calltrail_s: seconds(self.calltrail, before.calltrail),
            postgres_s: seconds(self.postgres, before.postgres),
            generator_s: seconds(self.generator, before.generator),
            machine_busy_s: seconds(self.machine_busy, before.machine_busy),
            machine_total_s: seconds(self.machine_total, before.machine_total),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// utime + stime of a process (fields 14 and 15 of its `stat`, after the command name).
fn process_ticks(stat_path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3 (state): utime is field 14, stime field 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The CPU time of the PostgreSQL backends connected to `database` (they also flush the WAL
/// of their commits). The server's shared processes (WAL writer, checkpointer, background
/// writer) are left out: they work for every database on the server.
fn postgres_ticks(database: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let stat_path = e.path().join("stat");
            let stat = std::fs::read_to_string(&stat_path).ok()?;
            let title = std::fs::read_to_string(e.path().join("cmdline")).ok()?;
            let ours = !database.is_empty() && title.contains(database);
            (stat.contains("(postgres)") && ours)
                .then(|| process_ticks(&stat_path.to_string_lossy()))?
        })
        .sum()
}

/// (busy, total) ticks of all cores, from the `cpu` line of `/proc/stat`.
fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle and iowait
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}
