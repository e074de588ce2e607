package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestReadmeSynopsisHasEveryFlag checks the synopsis of README.md's
// Commands section against the binary's commands: every flag a command
// takes (hidden ones and --help aside) is on its lines, where ETCD, HOST
// and MEMBER stand for the flags the "# NAME stands for:" lines list. A
// flag added to a command without a word in the README fails here.
func TestReadmeSynopsisHasEveryFlag(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "## Commands\n\n```sh\n")
	if !ok {
		t.Fatal("README.md has no ## Commands section opening with a sh block")
	}
	block, _, _ := strings.Cut(after, "```")
	// Join continuation lines (indented) to the line they continue.
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		switch {
		case strings.HasPrefix(l, "#   ") && len(lines) > 0:
			lines[len(lines)-1] += " " + strings.TrimPrefix(l, "#")
		case strings.HasPrefix(l, "  ") && len(lines) > 0:
			lines[len(lines)-1] += " " + l
		case l != "":
			lines = append(lines, l)
		}
	}
	macros := map[string]string{}
	macro := regexp.MustCompile(`^# ([A-Z]+) stands for(?: [^:]*)?: (.*)$`)
	synopsis := map[string]string{} // command path -> its lines, macros expanded
	for _, l := range lines {
		if m := macro.FindStringSubmatch(l); m != nil {
			macros[m[1]] = m[2]
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		words := strings.Fields(l)
		// The path: "procfleet" and the words up to the first that is
		// not a command name ("agent|relay" names two).
		paths := []string{words[0]}
		for _, w := range words[1:] {
			if !regexp.MustCompile(`^[a-z]+(\|[a-z]+)*$`).MatchString(w) {
				break
			}
			var next []string
			for _, p := range paths {
				for _, alt := range strings.Split(w, "|") {
					next = append(next, p+" "+alt)
				}
			}
			paths = next
		}
		for name, text := range macros {
			l = regexp.MustCompile(`\b`+name+`\b`).ReplaceAllString(l, text)
		}
		for _, p := range paths {
			synopsis[p] += " " + l + " "
		}
	}
	walk(newRoot(), func(c *cobra.Command) {
		if c.HasSubCommands() || c.Name() == "help" || c.HasParent() && c.Parent().Name() == "completion" {
			return
		}
		text, ok := synopsis[c.CommandPath()]
		if !ok {
			t.Errorf("README.md's synopsis has no line for %q", c.CommandPath())
			return
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Name == "help" {
				return
			}
			named := func(name string) bool {
				return regexp.MustCompile(`[\s\[(|]` + regexp.QuoteMeta(name) + `[\s\[\]=)|]`).MatchString(text)
			}
			if !named("--"+f.Name) && (f.Shorthand == "" || !named("-"+f.Shorthand)) {
				t.Errorf("README.md's synopsis of %q lacks --%s", c.CommandPath(), f.Name)
			}
		})
	})
}
