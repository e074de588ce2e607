package promtext_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/procfleet/procfleet/prom/promtext"
)

func ExampleCheck() {
	body := `# TYPE node_load1 gauge
node_load1 0.42 1700000000000
node_cpu_seconds_total{cpu="0",mode="idle"} 12345.67 1700000000000
node_cpu_seconds_total{cpu="0",mode="idle",cpu="1"} 1 1700000000000
`
	n, err := promtext.Check(strings.NewReader(body), promtext.DefaultLimits())
	fmt.Println(n, err)
	var le *promtext.LineError
	if errors.As(err, &le) {
		fmt.Println(le.Line, le.Column, le.Reason)
	}
	// Output:
	// 2 promtext: line 4, column 44: duplicate label name: "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\",cpu=\"1\"} 1 1700000000000"
	// 4 44 duplicate label name
}

func ExampleCheckGzip() {
	var body bytes.Buffer
	for _, part := range []string{"a 1\n", "b 2\n"} {
		// Bodies joined as they come: a multi-member gzip stream.
		w := gzip.NewWriter(&body)
		w.Write([]byte(part))
		w.Close()
	}
	fmt.Println(promtext.CheckGzip(bytes.NewReader(body.Bytes()), promtext.DefaultLimits()))

	_, err := promtext.CheckGzip(strings.NewReader("a 1\n"), promtext.DefaultLimits())
	fmt.Println(errors.Is(err, promtext.ErrCorruptGzip))
	// Output:
	// 2 <nil>
	// true
}
