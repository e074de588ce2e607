package main

// The systemd units that install writes. They are the same on every host:
// what differs between hosts is in the environment file and the config
// file beside them, so deploy/systemd/*.service hold exactly these texts;
// TestUnitFilesMatchDeploy keeps the two from drifting (go test
// ./cmd/procfleet -run TestUnitFilesMatchDeploy -update rewrites
// deploy/systemd from here).
//
// Every directive is explained where it is not self-evident: a unit is
// read by the people who run it, who need to know what they may relax.

// agentUnit is procfleet-agent.service.
const agentUnit = `# procfleet agent: host and per-process statistics from /proc, pushed to
# VictoriaMetrics. "procfleet install agent" installs this file as it is;
# the host's own settings are in /etc/procfleet/agent.env (etcd, cluster,
# node, labels) and /etc/procfleet/agent.yaml (listen, spool.dir). Change
# this unit with "systemctl edit procfleet-agent": a drop-in survives
# re-installs, an edit of this file does not.

[Unit]
Description=procfleet agent: host and per-process statistics to VictoriaMetrics
# The gossip advertises the host's first private address, which has to
# exist at start; etcd and the upstreams are reached over the network.
Wants=network-online.target
After=network-online.target
# Never stop retrying: RestartSteps= spaces the attempts out instead.
StartLimitIntervalSec=0

[Service]
Type=exec
User=procfleet
Group=procfleet
# $PROCFLEET_ETCD and $PROCFLEET_CLUSTER are read by procfleet itself; an
# empty PROCFLEET_ETCD runs the agent standalone, with the upstreams of
# its config file. An empty value below leaves that flag at its default.
EnvironmentFile=/etc/procfleet/agent.env
ExecStart=/usr/local/bin/procfleet agent --config=/etc/procfleet/agent.yaml \
    --node=${PROCFLEET_NODE} --labels=${PROCFLEET_LABELS} \
    --etcd-ca=${PROCFLEET_ETCD_CA} --etcd-cert=${PROCFLEET_ETCD_CERT} \
    --etcd-key=${PROCFLEET_ETCD_KEY} --etcd-user=${PROCFLEET_ETCD_USER} \
    --etcd-password-file=${PROCFLEET_ETCD_PASSWORD_FILE}
Restart=on-failure
RestartSec=2s
# systemd 254 and later let the delay grow from RestartSec= to
# RestartMaxDelaySec= over RestartSteps= restarts. Older versions log
# "Unknown key" for these two lines and restart every RestartSec=.
RestartSteps=5
RestartMaxDelaySec=1min
# Exit status 2 is a usage error (a bad flag or config file): restarting
# does not fix it.
RestartPreventExitStatus=2

# Capabilities: exactly what the per-process generator needs to read the
# /proc files of processes that belong to other users.
# - /proc/PID/stat, status and cmdline (and task/TID/stat and status with
#   generators.process.threads) are world-readable, and every field read
#   from them is filled in for any reader: no capability.
# - /proc/PID/io is mode 0400, owned by the process's user, and read(2)
#   checks PTRACE_MODE_READ_FSCREDS against the process (proc(5)):
#   CAP_DAC_READ_SEARCH lets open(2) past the file mode, CAP_SYS_PTRACE
#   lets read(2) past the ptrace access check. Either alone gets EACCES.
#   With CAP_SYS_PTRACE the agent also sees every process when /proc is
#   mounted with hidepid=.
# environ, fd/, maps, smaps and mem are not read, but the two allow more:
# reading any file, and other processes' memory through /proc/PID/mem.
# That is the price of the io series. Without both capabilities only the
# proc_pid_io_*_bytes_total series of other users' processes are missing:
# to run so, reset both lines to empty with "systemctl edit".
AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE
CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE
NoNewPrivileges=yes

# Memory: 22 MB resident with 80 processes (docs/performance.md), plus about
# 2 KiB per process tracked (20 MiB at 10,000). The largest consumer with a
# bound is the send queue, ship.queue_batches (256) x compress.target_bytes
# (512KiB) = 128MiB while no upstream takes data. 256M is twice that; past
# it something leaks, and a restart by the kernel's OOM killer and Restart=
# is the better outcome for the host. The Go heap goal stays under it.
# Raise both together if you raise the queue.
MemoryMax=256M
Environment=GOMEMLIMIT=200MiB
# The process generator keeps /proc/PID/{stat,schedstat} (and status and
# io of busy processes) open between scans, up to half this limit: a third
# of the CPU per process of opening them each scan, for about 4 KiB of
# kernel memory per descriptor, which MemoryMax= counts (64 MiB at 16,000
# processes). 65536 keeps both files of 16,000 processes; past the budget
# files are opened per scan.
LimitNOFILE=65536

# Data: the spool under /var/lib/procfleet/spool. StateDirectory= has
# systemd create /var/lib/procfleet if missing, give it to procfleet:procfleet
# at every start and keep it writable under ProtectSystem=strict;
# ReadWritePaths= says the last explicitly.
StateDirectory=procfleet
StateDirectoryMode=0750
ReadWritePaths=/var/lib/procfleet
UMask=0027

# Sandbox. Left out on purpose: ProtectProc= and ProcSubset= (they hide
# other users' processes, or all of them), PrivateUsers= (uids would read as
# nobody and the capabilities would not reach the host's processes),
# PrivateNetwork= (the agent would count a private namespace's interfaces
# and sockets) and PrivatePIDs=.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateMounts=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
# AF_NETLINK: without --gossip-advertise, the gossip finds the host's
# private address with net.Interfaces, which asks the kernel over netlink.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
# @system-service has neither ptrace(2) nor open_by_handle_at(2), which the
# two capabilities would otherwise open up; process_vm_readv(2) and
# process_vm_writev(2) are taken out for the same reason.
SystemCallFilter=@system-service
SystemCallFilter=~@privileged process_vm_readv process_vm_writev
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
`

// relayUnit is procfleet-relay.service.
const relayUnit = `# procfleet relay: takes VictoriaMetrics imports, keeps them in a
# write-ahead log and forwards them upstream. "procfleet install relay"
# installs this file as it is; the host's own settings are in
# /etc/procfleet/relay.env (etcd, cluster, node, labels) and
# /etc/procfleet/relay.yaml (listen, wal.dir, standalone upstreams). Change
# this unit with "systemctl edit procfleet-relay": a drop-in survives
# re-installs, an edit of this file does not.

[Unit]
Description=procfleet relay: imports kept on disk and forwarded to VictoriaMetrics
# The gossip advertises the host's first private address, which has to
# exist at start; etcd and the upstreams are reached over the network.
Wants=network-online.target
After=network-online.target
# Never stop retrying: RestartSteps= spaces the attempts out instead.
StartLimitIntervalSec=0

[Service]
Type=exec
User=procfleet
Group=procfleet
# $PROCFLEET_ETCD and $PROCFLEET_CLUSTER are read by procfleet itself; an
# empty PROCFLEET_ETCD runs the relay standalone, with the upstreams of
# its config file. An empty value below leaves that flag at its default.
EnvironmentFile=/etc/procfleet/relay.env
ExecStart=/usr/local/bin/procfleet relay --config=/etc/procfleet/relay.yaml \
    --node=${PROCFLEET_NODE} --labels=${PROCFLEET_LABELS} \
    --etcd-ca=${PROCFLEET_ETCD_CA} --etcd-cert=${PROCFLEET_ETCD_CERT} \
    --etcd-key=${PROCFLEET_ETCD_KEY} --etcd-user=${PROCFLEET_ETCD_USER} \
    --etcd-password-file=${PROCFLEET_ETCD_PASSWORD_FILE}
Restart=on-failure
RestartSec=2s
# systemd 254 and later let the delay grow from RestartSec= to
# RestartMaxDelaySec= over RestartSteps= restarts. Older versions log
# "Unknown key" for these two lines and restart every RestartSec=.
RestartSteps=5
RestartMaxDelaySec=1min
# Exit status 2 is a usage error (a bad flag or config file): restarting
# does not fix it.
RestartPreventExitStatus=2

# No capability: the relay listens on a port above 1024 and reads only its
# own files.
CapabilityBoundingSet=
NoNewPrivileges=yes

# No MemoryMax=: the peak is import.max_concurrent (2 per CPU) request
# bodies of up to import.max_body_bytes (32MiB) each, held about twice,
# which depends on the host; set one with "systemctl edit" once sized.
# One descriptor per connected agent.
LimitNOFILE=65536

# Data: the write-ahead log under /var/lib/procfleet/relay. StateDirectory=
# has systemd create /var/lib/procfleet if missing, give it to
# procfleet:procfleet at every start and keep it writable under
# ProtectSystem=strict; ReadWritePaths= says the last explicitly. TLS and
# token files must be readable by procfleet and not under /home or /root.
StateDirectory=procfleet
StateDirectoryMode=0750
ReadWritePaths=/var/lib/procfleet
UMask=0027

# Sandbox. ProtectProc=invisible hides other users' processes: the relay
# reads only /proc/self (systemd 247 and Linux 5.8 or later; older ones
# ignore it). ProcSubset=pid is left out: Go reads the listen backlog from
# /proc/sys/net/core/somaxconn.
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateMounts=yes
PrivateDevices=yes
ProtectProc=invisible
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
# AF_NETLINK: without --gossip-advertise, the gossip finds the host's
# private address with net.Interfaces, which asks the kernel over netlink.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
`
