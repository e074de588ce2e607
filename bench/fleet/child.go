package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// childOptions are the flags of a child process (see procs.go).
type childOptions struct {
	endpoints    string
	first, count int
	total        int
}

// runChild runs a child: members first..first+count-1 of a fleet of
// total, started on the parent's "start", until "stop" or the end of its
// stdin.
func runChild(o options, co childOptions, batch int) error {
	level := slog.LevelError + 1
	if o.verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var outMu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	send := func(m childMessage) {
		outMu.Lock()
		defer outMu.Unlock()
		if err := enc.Encode(m); err != nil {
			// The parent is gone: nothing left to simulate for.
			os.Exit(1)
		}
	}
	f := &fleet{endpoints: strings.Split(co.endpoints, ","), log: log, first: co.first, total: co.total,
		onApplied: func(i int, rev int64, at time.Time) {
			send(childMessage{Event: "applied", I: i, Rev: rev, At: at})
		},
		onRegister: func(i int, mark regMark) {
			send(childMessage{Event: "registered", I: i, Mark: mark})
		},
	}
	if o.shareRing {
		f.memo = &ringMemo{}
	}
	started := make(chan struct{})
	var startOnce sync.Once
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for in.Scan() {
		var c childCommand
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			return fmt.Errorf("cannot read the parent's command %q: %w", in.Text(), err)
		}
		switch c.Cmd {
		case "start":
			go func() {
				var err error
				startOnce.Do(func() {
					_, err = f.start(co.count, o.gossipers, batch, 0, 0)
					close(started)
				})
				m := childMessage{ID: c.ID}
				if err != nil {
					m.Err = err.Error()
				}
				send(m)
			}()
		case "states":
			go func() {
				m := childMessage{ID: c.ID, States: f.states()}
				m.Computed, m.Shared = f.ringCounts()
				send(m)
			}()
		case "restart":
			go func() {
				<-started
				m := childMessage{ID: c.ID}
				err := f.restartWith(c.I, func() { send(childMessage{Event: "reset", I: c.I}) })
				if err != nil {
					m.Err = err.Error()
				}
				send(m)
			}()
		case "stop":
			f.stopAll()
			send(childMessage{ID: c.ID})
			return nil
		default:
			send(childMessage{ID: c.ID, Err: fmt.Sprintf("unknown command %q", c.Cmd)})
		}
	}
	f.stopAll()
	return in.Err()
}
