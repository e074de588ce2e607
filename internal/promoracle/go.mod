module github.com/procfleet/procfleet/internal/promoracle

go 1.26.0

require (
	github.com/procfleet/procfleet v0.0.0
	github.com/prometheus/prometheus v0.316.0
)

replace github.com/procfleet/procfleet => ../..
