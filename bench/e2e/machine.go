package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// binaries are the paths of the programs the run drives.
type binaries struct {
	procfleet, victoriaMetrics, vmagent, nodeExporter string
}

// findBinaries checks that dir holds every program, as `make bench-e2e`
// builds them.
func findBinaries(dir string) (binaries, error) {
	b := binaries{
		procfleet:       filepath.Join(dir, "procfleet"),
		victoriaMetrics: filepath.Join(dir, "victoria-metrics"),
		vmagent:         filepath.Join(dir, "vmagent"),
		nodeExporter:    filepath.Join(dir, "node_exporter"),
	}
	for _, p := range []string{b.procfleet, b.victoriaMetrics, b.vmagent, b.nodeExporter} {
		if _, err := os.Stat(p); err != nil {
			return b, fmt.Errorf("%s is missing (make bench-e2e builds it): %w", p, err)
		}
	}
	return b, nil
}

// Versions are the versions of the programs measured, as the binaries say.
type Versions struct {
	Procfleet       string `json:"procfleet"`
	VictoriaMetrics string `json:"victoria_metrics"`
	Vmagent         string `json:"vmagent"`
	NodeExporter    string `json:"node_exporter"`
	Go              string `json:"go_harness"`
}

func readVersions(b binaries) Versions {
	return Versions{
		Procfleet:       procfleetVersion(b.procfleet),
		VictoriaMetrics: moduleVersion(b.victoriaMetrics),
		Vmagent:         moduleVersion(b.vmagent),
		NodeExporter:    moduleVersion(b.nodeExporter),
		Go:              runtime.Version(),
	}
}

// moduleVersion is the main module's version recorded in a Go binary built
// by `go install module@version` (such builds carry no -ldflags version),
// with the Go version that built it.
func moduleVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return bi.Main.Path + " " + bi.Main.Version + " (" + bi.GoVersion + ")"
}

// procfleetVersion is what `procfleet --version` prints (the git
// description `make build` stamps), with the Go version.
func procfleetVersion(path string) string {
	out, err := exec.Command(path, "--version").Output()
	v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "procfleet version"))
	if err != nil || v == "" {
		v = "unknown"
	}
	if bi, err := buildinfo.ReadFile(path); err == nil {
		v += " (" + bi.GoVersion + ")"
	}
	return v
}

// Machine describes where the run took place.
type Machine struct {
	Nproc         int    `json:"nproc"`
	CPUModel      string `json:"cpu_model"`
	Kernel        string `json:"kernel"`
	MemTotalBytes int64  `json:"mem_total_bytes"`
	ClkTck        int64  `json:"clk_tck"`
	ClkTckSource  string `json:"clk_tck_source"`
	LoadAvgStart  string `json:"loadavg_start"`
	LoadAvgEnd    string `json:"loadavg_end"`
	// Processes on the host before the sides start (after -host-procs
	// topped it up) and at the window's end.
	ProcessesStart int `json:"processes_start"`
	ProcessesEnd   int `json:"processes_end"`
	Sleepers       int `json:"sleepers"` // idle processes started by -host-procs
}

func readMachine() Machine {
	m := Machine{Nproc: runtime.NumCPU(), LoadAvgStart: loadavg(), ProcessesStart: countProcesses(), Sleepers: sleepers}
	m.ClkTck, m.ClkTckSource = clockTicks()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotalBytes = int64(sumMetric(strings.ReplaceAll(string(b), ":", ""), "MemTotal")) << 10
	}
	return m
}

// loadavg is the first three fields of /proc/loadavg: how busy the machine
// was besides this run, as far as one can tell.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
