// Package hostgen holds the host generators: one file per /proc source, each
// emitting the series node_exporter v1.12.1 emits for the same input, with
// the same names, labels and values, so that existing dashboards work
// unchanged. Each file keeps reading (a Reader) apart from parsing (a pure
// function over bytes), and parsing allocates nothing in steady state.
package hostgen

// Options locate the filesystems the host generators read.
type Options struct {
	// ProcRoot is the procfs mount point. Default "/proc".
	ProcRoot string
	// SysRoot is the sysfs mount point. Default "/sys".
	SysRoot string
}

func (o Options) withDefaults() Options {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	return o
}
