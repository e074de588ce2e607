package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/procfleet/procfleet/config"
	"github.com/procfleet/procfleet/prom/labels"
)

// dnsSource is one dns_sd_config: a group per name, as Prometheus makes
// them. A name that does not exist has no targets; a name whose lookup
// fails otherwise keeps its last targets.
type dnsSource struct {
	cfg     config.DNSSDConfig
	r       Resolver
	c       Config
	last    map[string]Group // by name
	current []Group
}

func newDNSSource(cfg config.DNSSDConfig, r Resolver, c Config) *dnsSource {
	return &dnsSource{cfg: cfg, r: r, c: c, last: map[string]Group{}}
}

func (s *dnsSource) key() string             { return sourceKey("dns", s.cfg) }
func (s *dnsSource) interval() time.Duration { return s.cfg.RefreshInterval.D() }

func (s *dnsSource) where() string {
	w := s.cfg.Type + " " + strings.Join(s.cfg.Names, ", ")
	if s.cfg.Type != config.DNSSRV {
		w += fmt.Sprintf(" port %d", s.cfg.Port)
	}
	return w
}

// dnsAnswer is the lookup of one name.
type dnsAnswer struct {
	g   Group
	err error
}

func (s *dnsSource) refresh(ctx context.Context) ([]Group, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.c.FetchTimeout)
	defer cancel()
	answers := make([]dnsAnswer, len(s.cfg.Names))
	var wg sync.WaitGroup
	for i, name := range s.cfg.Names {
		wg.Go(func() {
			g, err := s.lookup(ctx, name)
			answers[i] = dnsAnswer{g: g, err: err}
		})
	}
	wg.Wait()
	var errs []error
	b := newBudget(s.c)
	var groups []Group
	for i, name := range s.cfg.Names {
		a := answers[i]
		if a.err == nil {
			a.err = b.add([]Group{a.g})
		}
		if a.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, a.err))
		} else {
			s.last[name] = a.g
		}
		if g := s.last[name]; len(g.Targets) > 0 {
			groups = append(groups, g)
		}
	}
	changed := !groupsEqual(groups, s.current)
	s.current = groups
	return groups, changed, errors.Join(errs...)
}

// lookup resolves one name into its group, with Prometheus' meta labels:
// __meta_dns_name, and for SRV records __meta_dns_srv_record_target (as
// the record has it, with its final dot) and __meta_dns_srv_record_port.
// A name that does not exist (NXDOMAIN, or no records of the type) gives
// an empty group.
func (s *dnsSource) lookup(ctx context.Context, name string) (Group, error) {
	var targets []labels.Labels
	switch s.cfg.Type {
	case config.DNSSRV:
		_, srvs, err := s.r.LookupSRV(ctx, "", "", name)
		if err != nil {
			return Group{}, notFoundIsEmpty(err)
		}
		for _, srv := range srvs {
			port := strconv.Itoa(int(srv.Port))
			targets = append(targets, labels.Labels{
				{Name: labelAddress, Value: net.JoinHostPort(strings.TrimRight(srv.Target, "."), port)},
				{Name: labelDNSName, Value: name},
				{Name: labelDNSSRVPort, Value: port},
				{Name: labelDNSSRVTarget, Value: srv.Target},
			})
		}
	default:
		network := "ip4"
		if s.cfg.Type == config.DNSAAAA {
			network = "ip6"
		}
		ips, err := s.r.LookupIP(ctx, network, name)
		if err != nil {
			return Group{}, notFoundIsEmpty(err)
		}
		port := strconv.Itoa(s.cfg.Port)
		for _, ip := range ips {
			targets = append(targets, labels.Labels{
				{Name: labelAddress, Value: net.JoinHostPort(ip.String(), port)},
				{Name: labelDNSName, Value: name},
			})
		}
	}
	// Answers come in any order; a sorted group compares equal to the
	// last one when nothing changed.
	slices.SortFunc(targets, compareLabels)
	return Group{Targets: slices.CompactFunc(targets, labels.Labels.Equal)}, nil
}

// notFoundIsEmpty returns nil for an error saying that the name does not
// exist, which Prometheus takes as a valid, empty answer.
func notFoundIsEmpty(err error) error {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return nil
	}
	return err
}
