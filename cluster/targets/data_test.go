package targets

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// realisticTargets returns n targets as discovery publishes them after
// relabeling: exporters on hosts of a fleet, with the labels such a fleet
// carries (some repetitive, some unique per target, like cloud instance
// IDs), seeded.
func realisticTargets(n int, seed uint64) []Target {
	rng := rand.New(rand.NewPCG(seed, 7))
	regions := []string{"eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"}
	teams := []string{"payments", "search", "identity", "storage", "platform", "data", "ml", "web"}
	services := []string{"checkout", "cart", "catalog", "auth", "postgres", "kafka", "redis", "nginx", "api-gateway", "billing"}
	ts := make([]Target, n)
	for i := range ts {
		region := regions[rng.IntN(len(regions))]
		host := fmt.Sprintf("ip-10-%d-%d-%d.%s.compute.internal", rng.IntN(256), rng.IntN(256), rng.IntN(256), region)
		port := []string{"9100", "9187", "9121", "9308", "8080"}[rng.IntN(5)]
		ts[i] = Target{
			Address: host + ":" + port,
			Labels: []Label{
				{"__metrics_path__", "/metrics"},
				{"__scheme__", "http"},
				{"__scrape_interval__", "15s"},
				{"__scrape_timeout__", "10s"},
				{"availability_zone", region + string(rune('a'+rng.IntN(3)))},
				{"env", []string{"prod", "staging", "dev"}[rng.IntN(3)]},
				{"instance", host + ":" + port},
				{"instance_id", fmt.Sprintf("i-%017x", rng.Uint64()>>4)},
				{"instance_type", []string{"m6i.xlarge", "c6i.2xlarge", "r6i.4xlarge", "t3.medium"}[rng.IntN(4)]},
				{"job", "node"},
				{"kubernetes_namespace", services[rng.IntN(len(services))] + "-" + teams[rng.IntN(len(teams))]},
				{"region", region},
				{"service", services[rng.IntN(len(services))]},
				{"team", teams[rng.IntN(len(teams))]},
				{"version", "v1." + strconv.Itoa(rng.IntN(30)) + "." + strconv.Itoa(rng.IntN(10))},
			},
		}
	}
	return ts
}

// randomTargets returns n targets whose labels are random bytes: the
// worst case for compression.
func randomTargets(n int, seed uint64) []Target {
	rng := rand.New(rand.NewPCG(seed, 9))
	str := func(k int) string {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return string(b)
	}
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{Address: str(30)}
		for k := range 10 {
			ts[i].Labels = append(ts[i].Labels, Label{Name: "l" + strconv.Itoa(k), Value: str(20)})
		}
	}
	return ts
}
