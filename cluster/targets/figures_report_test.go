package targets

import (
	"fmt"
	"os"
	"testing"
)

// TestFiguresReport prints the figures behind docs/design/scraping.md
// ("Ownership of scrape targets"): every alternative on one data set, and
// Assign at several load bounds over 20 data sets. It asserts nothing
// (owner_figures_test.go does, for Assign) and runs only with
// PROCFLEET_FIGURES=1, since it takes a while:
//
//	PROCFLEET_FIGURES=1 go test -run TestFiguresReport -v ./cluster/targets/
func TestFiguresReport(t *testing.T) {
	if os.Getenv("PROCFLEET_FIGURES") == "" {
		t.Skip("set PROCFLEET_FIGURES=1 to print the comparison")
	}
	for _, a := range alternatives(DefaultLoad) {
		t.Logf("%s, load %.2f:", a.name, DefaultLoad)
		for _, n := range []int{2000, 10000} {
			ms := memberNames(10)
			refs := uniformRefs(n)
			mv, mean, oth := leaveFigures(a, ms, refs)
			jm, je := joinFigures(a, ms, refs, "scraper-new.eu-1")
			t.Logf("  10 members, %d targets: busiest %.3f; one leaves: moved max %.3fx mean %.3fx ideal, others %.2f%%; one joins: moved %.2f%%, elsewhere %.2f%%",
				n, busiest(ms, refs, a.assign(ms, refs)), mv, mean, 100*oth, 100*jm, 100*je)
		}
		ms := memberNames(100)
		refs := uniformRefs(20000)
		line := fmt.Sprintf("  100 members, 20000 targets: busiest %.3f; 10 members, 2000 targets", busiest(ms, refs, a.assign(ms, refs)))
		for _, flat := range []bool{true, false} {
			ms := memberNames(10)
			refs := heavyRefs(2000, flat, 7)
			line += fmt.Sprintf("; 1%% 100x heavier (light %s): samples %.3f", map[bool]string{true: "1000", false: "500-2000"}[flat], heaviest(ms, refs, a.assign(ms, refs)))
		}
		t.Log(line)
	}
	for _, load := range []float64{1.03, 1.05, 1.07, 1.1} {
		for _, a := range alternatives(load)[:2] {
			for _, n := range []int{2000, 10000} {
				var worst, worstMean, anyMean, others, elsewhere, heavy float64
				const sets = 20
				for set := range sets {
					ms := memberNames(10)
					refs := jobRefs(n, fmt.Sprintf("job-%d", set))
					mv, mean, oth := leaveFigures(a, ms, refs)
					worst = max(worst, mv)
					worstMean += mv / sets
					anyMean += mean / sets
					others = max(others, oth)
					_, e := joinFigures(a, ms, refs, "scraper-new.eu-1")
					elsewhere = max(elsewhere, e)
					hr := heavyRefs(n, false, uint64(set))
					for i := range hr {
						hr[i].ID = refs[i].ID
					}
					heavy = max(heavy, heaviest(ms, hr, a.assign(ms, hr)))
				}
				t.Logf("%s, load %.2f, 10 members, %d targets, 20 sets: one leaves: moved (busiest leaving) max %.3f mean %.3f, (any leaving) mean %.3f, others max %.2f%%; one joins: elsewhere max %.2f%%; heavy (light 500-2000) max %.3f",
					a.name, load, n, worst, worstMean, anyMean, 100*others, 100*elsewhere, heavy)
			}
		}
	}
}
