package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's chromium, headless, through chromedp.
// chromium is installed with apt-get when it is missing and the test runs
// as root (as CI does); otherwise the tests skip and say why.

var (
	chromiumOnce sync.Once
	chromiumBin  string
	chromiumErr  error
)

// chromium returns the path of the chromium binary, installing Debian's
// package first when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	chromiumOnce.Do(func() {
		if p, err := exec.LookPath("chromium"); err == nil {
			chromiumBin = p
			return
		}
		if os.Geteuid() != 0 {
			chromiumErr = errors.New("chromium is not on PATH and the test does not run as root, so it cannot apt-get install Debian's chromium package; install it (apt-get install chromium) to run this test")
			return
		}
		install := func() ([]byte, error) {
			cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "chromium")
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			return cmd.CombinedOutput()
		}
		start := time.Now()
		out, err := install()
		if err != nil {
			// A fresh machine has no package lists yet.
			if upd, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
				chromiumErr = fmt.Errorf("apt-get update: %v\n%s", uerr, upd)
				return
			}
			out, err = install()
		}
		if err != nil {
			chromiumErr = fmt.Errorf("apt-get install chromium: %v\n%s", err, out)
			return
		}
		fmt.Fprintf(os.Stderr, "installed Debian's chromium with apt-get in %v\n", time.Since(start).Round(time.Second))
		chromiumBin, chromiumErr = exec.LookPath("chromium")
	})
	if chromiumErr != nil {
		if os.Geteuid() != 0 {
			t.Skip(chromiumErr)
		}
		t.Fatal(chromiumErr)
	}
	return chromiumBin
}

// browser is one headless chromium with a 1280x800 window, stopped when
// the test ends.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // root in a container: chromium's sandbox needs user namespaces
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	// The first Run starts the browser: no timeout on it (it would stop
	// the browser when it fires).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("cannot start %s: %v", bin, err)
	}
	return &browser{t: t, ctx: ctx}
}

// open loads url and waits until the page has drawn a view.
func (b *browser) open(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("navigate to %s: %v", url, err)
	}
	b.wait("the first view", 20*time.Second, `document.body.dataset.etcdRevision !== undefined`)
}

// eval runs a JavaScript expression on the page and decodes its value.
func eval[T any](b *browser, js string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

// wait polls the page until the expression is true and returns how long
// that took.
func (b *browser) wait(what string, timeout time.Duration, js string) time.Duration {
	b.t.Helper()
	start := time.Now()
	var err error
	for {
		var ok bool
		if ok, err = eval[bool](b, js); err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	shown, _ := eval[string](b, `document.querySelector("main").innerText`)
	b.t.Fatalf("the page did not show %s within %v (last error %v); it shows:\n%s", what, timeout, err, shown)
	return 0
}

// screenshot saves what the window shows as name.png in the test's
// artifact directory (go test -artifacts -outputdir DIR keeps it).
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// layoutJS finds what sticks out of the 1280x800 window or out of its
// box: the page is wider than the window, an element reaches past the
// window's right edge, a member chip lies outside its card or is squeezed
// too small to see. It returns one line per fault.
const layoutJS = `(() => {
  const out = [];
  const W = window.innerWidth;
  if (document.documentElement.scrollWidth > W) out.push("page is " + document.documentElement.scrollWidth + "px wide in a " + W + "px window");
  for (const e of document.querySelectorAll("body *")) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (e.closest(".list")) continue; // scrolls inside its own box
    if (r.right > W + 0.5 || r.left < -0.5) out.push(e.tagName + "." + e.className + " spans x " + r.left.toFixed(0) + ".." + r.right.toFixed(0));
  }
  for (const c of document.querySelectorAll(".chip[data-node]")) {
    const box = c.closest(".upstream").getBoundingClientRect();
    const r = c.getBoundingClientRect();
    if (r.right > box.right || r.bottom > box.bottom || r.left < box.left) out.push("chip " + c.dataset.node + " outside its card");
    else if (r.width < 8 || r.height < 8) out.push("chip " + c.dataset.node + " squeezed to " + r.width.toFixed(1) + "x" + r.height.toFixed(1) + "px");
  }
  return out.slice(0, 20).join("\n");
})()`

// checkLayout fails the test when something sticks out (layoutJS).
func (b *browser) checkLayout(what string) {
	b.t.Helper()
	faults, err := eval[string](b, layoutJS)
	if err != nil {
		b.t.Fatal(err)
	}
	if faults != "" {
		b.t.Errorf("%s does not fit 1280x800:\n%s", what, faults)
	}
}

// groups returns the nodes of the chips under each upstream card, as the
// page draws them.
func (b *browser) groups() map[string][]string {
	b.t.Helper()
	g, err := eval[map[string][]string](b, `Object.fromEntries([...document.querySelectorAll("#upstreams .upstream")].map((u) =>
	  [u.dataset.name, [...u.querySelectorAll(".chip[data-node]")].map((c) => c.dataset.node).sort()]))`)
	if err != nil {
		b.t.Fatal(err)
	}
	return g
}

func joinSorted(s []string) string { return strings.Join(s, ",") }
