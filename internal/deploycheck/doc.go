// Package deploycheck holds only tests: they check what deploy/ ships
// against the code, offline.
//
//   - deploy/kubernetes/*.yaml decodes strictly (unknown fields are errors)
//     into the k8s.io/api types of each apiVersion and kind; every flag the
//     containers pass exists in `procfleet <command> --help`; probes, mounts
//     and ports agree with those flags; the agent's privileges are exactly
//     what reading other processes' /proc files takes; the ConfigMap's
//     cluster.yaml passes config.ParseCluster. The bootstrap Job's,
//     DaemonSet's and StatefulSet's own arguments then run against an
//     embedded etcd, in a sandbox that maps their mounts to temporary
//     directories and fixtures.
//   - deploy/grafana/*.json parses, its panels have unique ids and targets,
//     and every procfleet_* and proc_pid_* name its queries use is one that
//     a real agent, relay or scan, run from a fresh build, exposes.
//
// The tests build bin/procfleet's package once, into a temporary directory,
// in TestMain.
package deploycheck
