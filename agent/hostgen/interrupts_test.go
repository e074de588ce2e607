package hostgen

import (
	"testing"

	"github.com/procfleet/procfleet/agent/emit"
)

func TestInterrupts(t *testing.T) {
	const header = "           CPU0       CPU2\n"
	// An empty label is no label, so testenv.ParseText drops it.
	key := func(cpu, typ, info, devices string) string {
		if devices == "" {
			return `node_interrupts_total{cpu="` + cpu + `",info="` + info + `",type="` + typ + `"}`
		}
		return `node_interrupts_total{cpu="` + cpu + `",devices="` + devices + `",info="` + info + `",type="` + typ + `"}`
	}
	runGenA(t, func(o Options) emit.Generator { return NewInterrupts(o) }, []genACase{
		{name: "good", files: map[string]string{"interrupts": header +
			" 16:  1  18446744073709551615  IR-IO-APIC  16-fasteoi   ehci_hcd:usb1,   mmc0\n" +
			"NMI:  0  3   Non-maskable   interrupts\n" +
			"ERR:  7\nno colon here\n"},
			want: map[string]float64{
				key("0", "16", "IR-IO-APIC", "16-fasteoi ehci_hcd:usb1, mmc0"): 1,
				key("1", "16", "IR-IO-APIC", "16-fasteoi ehci_hcd:usb1, mmc0"): 18446744073709551615,
				key("0", "NMI", "Non-maskable interrupts", ""):                 0,
				key("1", "NMI", "Non-maskable interrupts", ""):                 3,
			}},
		{name: "bad value", files: map[string]string{"interrupts": header + "  1:  x  2  edge  i8042\n"},
			want: map[string]float64{key("1", "1", "edge", "i8042"): 2}, wantErr: "line 2: 1 CPU column 0"},
		{name: "quote in name", files: map[string]string{"interrupts": header + `A"B:  1  2  say "hi"` + "\n"},
			want: map[string]float64{key("0", `A\"B`, `say \"hi\"`, ""): 1, key("1", `A\"B`, `say \"hi\"`, ""): 2}},
		{name: "empty", files: map[string]string{"interrupts": ""}, want: map[string]float64{}, wantErr: "line 1: file is empty"},
		{name: "missing", files: map[string]string{}, wantErr: "no such file"},
	})
}

func FuzzInterrupts(f *testing.F) {
	f.Add(readFixtureA(f, "interrupts"))
	f.Add([]byte("CPU0\n 1: 5 x y z\nA: 1\n"))
	var p interruptsParse
	f.Fuzz(func(t *testing.T, data []byte) {
		cpus, err := parseInterrupts(data, "interrupts", &p)
		if err != nil {
			return
		}
		for _, r := range p.rows {
			if len(r.values) != cpus {
				t.Fatalf("row %q has %d values for %d CPUs", r.name, len(r.values), cpus)
			}
		}
		for _, r := range p.rows {
			for _, v := range r.values {
				_, _ = parseFloat(v)
			}
		}
	})
}
