module github.com/procfleet/procfleet

go 1.26

require (
	github.com/VictoriaMetrics/metrics v1.45.0
	github.com/klauspost/compress v1.20.4
	github.com/prometheus/procfs v0.21.1
	github.com/spf13/cobra v1.10.2
	go.yaml.in/yaml/v3 v3.0.6
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/valyala/fastrand v1.1.0 // indirect
	github.com/valyala/histogram v1.2.0 // indirect
	golang.org/x/sys v0.46.0 // indirect
)
