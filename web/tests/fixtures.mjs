// fixtures.mjs: the snapshots the browser tests ingest through the real
// POST /api/v1/ingest. Deterministic (a seeded generator), so a failure
// reproduces.

export const HOSTILE_NAME = '<img src=x onerror=alert(1)>';
export const HOSTILE_HOST = '<img src=x onerror=alert(2)>"\'&amp;<b>host';
export const SMALL_HOST = 'alpha.example';
export const BIG_HOST = 'big-5000';

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const BOOT = Date.parse('2026-11-25T08:00:00Z');
const iso = (ms) => new Date(ms).toISOString();

export function systemInfo(hostname, processCount) {
  return {
    os: { name: 'linux', distro: 'debian', version: '12.8', kernel: '6.1.0-28-amd64', arch: 'x86_64' },
    cpu: { model: 'AMD EPYC 7763 64-Core Processor', physical_cores: 8, logical_threads: 16, current_mhz: 2445.4, max_mhz: 3529, usage_percent: 37.5 },
    memory: { total_bytes: 33554432000, used_bytes: 21474836480, available_bytes: 12079595520 },
    swap: { total_bytes: 4294967296, used_bytes: 268435456 },
    filesystems: [
      { mountpoint: '/', device: '/dev/nvme0n1p2', fstype: 'ext4', total_bytes: 502468108288, used_bytes: 301480864972 },
      { mountpoint: '/boot/efi', device: '/dev/nvme0n1p1', fstype: 'vfat', total_bytes: 535805952, used_bytes: 6160384 },
      { mountpoint: '/var/lib/docker', device: '/dev/sdb1', fstype: 'xfs', total_bytes: 1099511627776, used_bytes: 1030792151040 },
    ],
    boot_time: iso(BOOT),
    uptime_seconds: 3 * 86400 + 5 * 3600 + 17 * 60,
    load_average: { load1: 2.31, load5: 1.87, load15: 1.52 },
    process_count: processCount,
    exporter: 'procscope-exporter test-fixture',
    [`${hostname.length > 20 ? 'hostile_' : ''}extra_field`]: 'from an older agent',
  };
}

/**
 * small: a readable host with every hard case in it.
 * pid 500 -> 501 -> 502 -> 500 is a ppid cycle, pid 600 is its own parent,
 * pid 700 has a parent that is not in the snapshot.
 */
export function smallProcesses(extra = []) {
  const P = (pid, ppid, name, cpu, mem, more = {}) => ({
    pid, ppid, name, cpu_percent: cpu, memory_mb: mem,
    username: 'root', status: 'sleeping', num_threads: 1, create_time: iso(BOOT + pid * 1000), ...more,
  });
  return [
    P(1, 0, 'systemd', 0.3, 12.6, { cmdline: '/sbin/init splash', memory_percent: 0.04 }),
    P(2, 0, 'kthreadd', 0, 0, { cmdline: '' }),
    P(3, 2, 'rcu_gp', 0, 0),
    P(4, 2, 'kworker/0:0H', 0.1, 0, { status: 'idle' }),
    P(120, 1, 'systemd-journald', 0.5, 48.1, { cmdline: '/lib/systemd/systemd-journald' }),
    P(300, 1, 'sshd', 0, 9.2, { cmdline: 'sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups' }),
    P(301, 300, 'sshd', 0, 11.1, { cmdline: 'sshd: alice [priv]' }),
    P(302, 301, 'bash', 0.2, 5.3, { username: 'alice', cmdline: '-bash' }),
    P(303, 302, 'htop', 2.4, 4.4, { username: 'alice', cmdline: 'htop -d 10', status: 'running' }),
    P(400, 1, 'nginx', 0.1, 20.5, { username: 'root', cmdline: 'nginx: master process /usr/sbin/nginx -g daemon on;' }),
    P(401, 400, 'nginx', 3.2, 35.0, { username: 'www-data', cmdline: 'nginx: worker process', num_threads: 4 }),
    P(402, 400, 'nginx', 1.7, 31.2, { username: 'www-data', cmdline: 'nginx: worker process', num_threads: 4 }),
    P(450, 1, 'postgres', 1.1, 210.4, { username: 'postgres', cmdline: '/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main', num_threads: 1 }),
    P(451, 450, 'postgres', 0.4, 90.7, { username: 'postgres', cmdline: 'postgres: checkpointer' }),
    P(452, 450, 'postgres', 7.9, 150.2, { username: 'postgres', cmdline: 'postgres: app appdb 10.0.0.7(51234) SELECT', status: 'running' }),
    P(460, 1, 'java', 55.5, 2048.0, { username: 'app', num_threads: 87, cmdline: `java -Xmx2g -jar /opt/app/app.jar --spring.profiles.active=prod ${'--very-long-option=value '.repeat(20)}` }),
    P(470, 1, 'cron', 0, 2.9, { cmdline: '/usr/sbin/cron -f' }),
    P(480, 1, 'evil', 0.2, 1.5, { username: 'mallory' }),
    P(481, 480, HOSTILE_NAME, 0.1, 1.0, { username: '<b>mallory</b>', cmdline: `sh -c "${HOSTILE_NAME}"; echo '<script>alert(3)</script>'` }),
    P(500, 502, 'cycle-a', 0.1, 1.0),
    P(501, 500, 'cycle-b', 0.1, 1.0),
    P(502, 501, 'cycle-c', 0.1, 1.0),
    P(600, 600, 'self-parent', 0.1, 1.0),
    P(700, 65000, 'orphan-missing-parent', 0.1, 1.0),
    P(701, 700, 'orphan-child', 0.1, 1.0),
    ...extra,
  ];
}

/**
 * big: 5,000 processes shaped like a busy server: systemd with services,
 * each with workers, some deep chains, kernel threads under kthreadd.
 */
export function bigProcesses(n = 5000) {
  const r = rng(42);
  const names = ['nginx', 'postgres', 'python3', 'node', 'java', 'gunicorn', 'redis-server', 'containerd-shim', 'php-fpm', 'sidekiq', 'celery', 'envoy'];
  const users = ['root', 'www-data', 'postgres', 'app', 'nobody', 'redis'];
  const procs = [
    { pid: 1, ppid: 0, name: 'systemd', cpu_percent: 0.2, memory_mb: 14.2, username: 'root', status: 'sleeping', num_threads: 1, create_time: iso(BOOT), cmdline: '/sbin/init' },
    { pid: 2, ppid: 0, name: 'kthreadd', cpu_percent: 0, memory_mb: 0, username: 'root', status: 'sleeping', num_threads: 1, create_time: iso(BOOT), cmdline: '' },
  ];
  let pid = 3;
  const parents = [1];
  while (procs.length < n) {
    let ppid;
    const x = r();
    if (x < 0.08) ppid = 2; // kernel thread
    else if (x < 0.2) ppid = 1; // a service
    else ppid = parents[Math.floor(r() * parents.length)];
    const name = ppid === 2 ? `kworker/${pid % 16}:${pid % 3}` : names[Math.floor(r() * names.length)];
    const p = {
      pid,
      ppid,
      name: ppid !== 2 && r() < 0.3 ? `${name}-worker-${pid}` : name,
      cpu_percent: Math.round(r() * r() * 2000) / 10,
      memory_mb: Math.round(r() * r() * 40000) / 10,
      username: ppid === 2 ? 'root' : users[Math.floor(r() * users.length)],
      status: r() < 0.1 ? 'running' : 'sleeping',
      num_threads: 1 + Math.floor(r() * r() * 64),
      create_time: iso(BOOT + pid * 997),
      cmdline: ppid === 2 ? '' : `/usr/bin/${name} --config /etc/${name}/${pid}.conf --port ${1024 + (pid % 50000)}`,
    };
    procs.push(p);
    if (ppid !== 2 && r() < 0.4) parents.push(pid);
    pid += 1 + Math.floor(r() * 3);
  }
  return procs;
}

export function snapshot(hostname, capturedAt, processes) {
  return {
    hostname,
    captured_at: capturedAt,
    system_info: systemInfo(hostname, processes.length),
    processes,
  };
}
