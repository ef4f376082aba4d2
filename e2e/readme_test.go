package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// configLines is a Caddyfile without its comment and blank lines.
func configLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// TestScalingOutReadme: the Caddyfiles README.md's "Scaling out" shows are
// the example files e2e/replica_test.go runs, line for line (comments
// aside), so the documented deployment is the tested one.
func TestScalingOutReadme(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "\n## Scaling out\n")
	if !ok {
		t.Fatal(`README.md has no "## Scaling out" section`)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	blocks := regexp.MustCompile("(?s)```caddyfile\n# (Caddyfile\\.[a-z]+\\.example) \\(comments trimmed\\)\n(.*?)```").FindAllStringSubmatch(sec, -1)
	seen := map[string]bool{}
	for _, b := range blocks {
		name := b[1]
		seen[name] = true
		file, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatalf("README.md shows %s: %v", name, err)
		}
		got, want := configLines(b[2]), configLines(string(file))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("README.md's %s differs from the file:\n--- README\n%s\n--- %s\n%s", name, strings.Join(got, "\n"), name, strings.Join(want, "\n"))
		}
	}
	for _, name := range []string{"Caddyfile.replica.example", "Caddyfile.balancer.example"} {
		if !seen[name] {
			t.Errorf(`README.md's "Scaling out" does not show %s`, name)
		}
	}
}
