package agent

import (
	"context"
	"errors"
	"reflect"

	"github.com/procfleet/procfleet/agent/sched"
	"github.com/procfleet/procfleet/config"
)

type applyRequest struct {
	cfg  config.Agent
	done chan error
}

// ErrNotRunning is returned by Apply when the agent's Run is not running.
var ErrNotRunning = errors.New("agent: not running")

// Apply changes the configuration of the running agent without stopping
// it and without losing what is in flight:
//
//   - generators, their intervals, full_every, scheduler.workers and the
//     procfs and sysfs roots: the scheduler is rebuilt; the old one finishes
//     its scans into the compressor first;
//   - compress: from the next batch (target size and flush age at once);
//   - ship.upstreams with their credentials, ship.strategy, limit: at once;
//   - everything else (hostname, job, listen, log, debug, scheduler.buffers
//     and the other ship settings) applies at the next start, which Apply
//     logs.
//
// An invalid cfg changes nothing and is returned as an error. Apply blocks
// until the change is made or ctx is done; it is safe for concurrent use.
func (a *Agent) Apply(ctx context.Context, cfg config.Agent) error {
	if cfg.Hostname == "" {
		cfg.Hostname = a.cfg.Hostname
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	req := applyRequest{cfg: cfg, done: make(chan error, 1)}
	select {
	case a.applyCh <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stopped:
		return ErrNotRunning
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runScheduler runs the scheduler until ctx is done, swapping it for a new
// one when Apply asks for it.
func (a *Agent) runScheduler(ctx context.Context) error {
	s := a.sched
	for {
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(sctx) }()
		var next *sched.Scheduler
		for next == nil {
			select {
			case <-ctx.Done():
				stop()
				return <-done
			case req := <-a.applyCh:
				var err error
				next, err = a.apply(req.cfg)
				req.done <- err
			}
		}
		// The old scheduler returns after its scans finished writing into
		// the compressor, which keeps running: nothing is lost.
		stop()
		if err := <-done; err != nil {
			a.log.Warn("scheduler stopped with an error while being replaced", "err", err)
		}
		s, a.sched = next, next
	}
}

// apply makes the live changes of cfg and returns a new scheduler when the
// generators changed (nil otherwise).
func (a *Agent) apply(cfg config.Agent) (*sched.Scheduler, error) {
	old := a.cfg
	var next *sched.Scheduler
	if generatorsChanged(old, cfg) {
		s, err := a.newScheduler(cfg)
		if err != nil {
			return nil, err
		}
		next = s
	}
	if !reflect.DeepEqual(old.Compress, cfg.Compress) {
		a.shipper.SetTextConfig(cfg.Compress)
		if err := a.comp.SetConfig(cfg.Compress); err != nil {
			return nil, err
		}
		if err := a.scrapeComp.SetConfig(cfg.Compress); err != nil {
			return nil, err
		}
	}
	if len(cfg.Ship.Upstreams) > 0 && (!reflect.DeepEqual(old.Ship.Upstreams, cfg.Ship.Upstreams) ||
		!reflect.DeepEqual(old.Ship.Credentials, cfg.Ship.Credentials) || !reflect.DeepEqual(old.Ship.Protocols, cfg.Ship.Protocols)) {
		if err := a.shipper.SetUpstreamConfig(cfg.Ship.Upstreams, cfg.Ship.Credentials, cfg.Ship.Protocols); err != nil {
			return nil, err
		}
	}
	if old.Ship.Strategy != cfg.Ship.Strategy {
		if err := a.shipper.SetStrategy(cfg.Ship.Strategy); err != nil {
			return nil, err
		}
	}
	if old.Limit != cfg.Limit {
		a.limiter.SetRate(int64(cfg.Limit.BytesPerSecond), int64(cfg.Limit.Burst))
	}
	a.logRestartOnly(old, cfg)
	applied := cfg
	// Settings that apply at restart keep their running values, so that a
	// later Apply compares against what runs.
	applied.Hostname, applied.Job, applied.Listen, applied.Log = old.Hostname, old.Job, old.Listen, old.Log
	applied.Debug = old.Debug
	applied.Scheduler.Buffers = old.Scheduler.Buffers
	upstreams, strategy, creds, protos := cfg.Ship.Upstreams, cfg.Ship.Strategy, cfg.Ship.Credentials, cfg.Ship.Protocols
	if len(upstreams) == 0 {
		upstreams, creds, protos = old.Ship.Upstreams, old.Ship.Credentials, old.Ship.Protocols
	}
	applied.Ship = old.Ship
	applied.Ship.Upstreams, applied.Ship.Strategy, applied.Ship.Credentials = upstreams, strategy, creds
	applied.Ship.Protocols = protos
	a.cfg = applied
	return next, nil
}

func generatorsChanged(a, b config.Agent) bool {
	return !reflect.DeepEqual(a.Generators, b.Generators) || a.FullEvery != b.FullEvery ||
		a.Scheduler.Workers != b.Scheduler.Workers || a.ProcfsRoot != b.ProcfsRoot || a.SysfsRoot != b.SysfsRoot
}

func (a *Agent) logRestartOnly(old, cfg config.Agent) {
	ship, oldShip := cfg.Ship, old.Ship
	ship.Upstreams, ship.Strategy, oldShip.Upstreams, oldShip.Strategy = nil, "", nil, ""
	ship.Credentials, oldShip.Credentials = nil, nil
	ship.Protocols, oldShip.Protocols = nil, nil
	for key, changed := range map[string]bool{
		"hostname":          old.Hostname != cfg.Hostname,
		"job":               old.Job != cfg.Job,
		"listen":            old.Listen != cfg.Listen,
		"log":               old.Log != cfg.Log,
		"debug":             old.Debug != cfg.Debug,
		"scheduler.buffers": old.Scheduler.Buffers != cfg.Scheduler.Buffers,
		"ship":              !reflect.DeepEqual(ship, oldShip),
	} {
		if changed {
			a.log.Warn("config change applies at the next start", "key", key)
		}
	}
}
