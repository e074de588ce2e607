package main

import (
	"log/slog"
	"os"
	"runtime"
	"testing"
)

func TestProcsPolicy(t *testing.T) {
	defer runtime.SetDefaultGOMAXPROCS()
	t.Setenv("GOMAXPROCS", "") // registers the restore
	os.Unsetenv("GOMAXPROCS")
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	log := slog.New(slog.DiscardHandler)

	p := newProcsPolicy(log)
	if got := runtime.GOMAXPROCS(0); got != agentProcs {
		t.Fatalf("scraping nothing: GOMAXPROCS %d; want %d", got, agentProcs)
	}
	p.scraping(true)
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Errorf("scraping: GOMAXPROCS %d; want Go's default %d", got, def)
	}
	p.scraping(true)
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Errorf("scraping again: GOMAXPROCS %d; want %d", got, def)
	}
	p.scraping(false)
	if got := runtime.GOMAXPROCS(0); got != agentProcs {
		t.Errorf("targets gone: GOMAXPROCS %d; want %d", got, agentProcs)
	}

	var none *procsPolicy // procfleet dev, tests
	runtime.SetDefaultGOMAXPROCS()
	none.scraping(false)
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Errorf("nil policy: GOMAXPROCS %d; want %d untouched", got, def)
	}

	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3) // as the runtime does from $GOMAXPROCS at start
	p = newProcsPolicy(log)
	p.scraping(false)
	p.scraping(true)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("with GOMAXPROCS=3: %d; want it left at 3", got)
	}
}
