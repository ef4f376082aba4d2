package mlflowexport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.jsonl")
	j, err := OpenJournal(path, "https://dst", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Record{
		{Kind: KindExperiment, Old: "1", New: "7"},
		{Kind: KindRun, Old: "a", New: "b", Experiment: "1"},
		{Kind: KindRunDone, Old: "a"},
		{Kind: KindRun, Old: "c", New: "d", Experiment: "1"},
		{Kind: KindModelVersion, Name: "m", Old: "4", New: "3"},
		{Kind: KindModelDone, Name: "m"},
	} {
		if err := j.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	// A crash cut the last line short.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"kind":"run_done","ol`)
	f.Close()

	j, err = OpenJournal(path, "https://dst", false)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := j.Experiment("1"); n != "7" {
		t.Errorf("experiment map: %q", n)
	}
	if n, _ := j.Run("c"); n != "d" || !j.RunDone("a") || j.RunDone("c") {
		t.Errorf("run map: %q done a=%v c=%v", n, j.RunDone("a"), j.RunDone("c"))
	}
	if v, _ := j.Version("m", "4"); v != "3" || !j.ModelDone("m") {
		t.Errorf("version map: %q", v)
	}
	if err := j.Append(Record{Kind: KindRunDone, Old: "c"}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	data, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(data), "\"name\":\"m\"}\n{\"kind\":\"run_done\",\"old\":\"c\"}\n") {
		t.Errorf("the cut line was not replaced by the next record:\n%s", data)
	}
	j, err = OpenJournal(path, "https://dst", true)
	if err != nil {
		t.Fatalf("reopening after a cut line: %v", err)
	}
	if !j.RunDone("c") {
		t.Error("the record after the cut line was lost")
	}
	if _, err := OpenJournal(path, "https://other", true); err == nil {
		t.Error("a map for another destination was accepted")
	}
	// A corrupt line in the middle is an error, not silently skipped.
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	_ = os.WriteFile(bad, []byte("{\"kind\":\"run\",\"old\":\"a\",\"new\":\"b\"}\nnot json\n{\"kind\":\"run_done\",\"old\":\"a\"}\n"), 0o600)
	if _, err := OpenJournal(bad, "https://dst", true); err == nil {
		t.Error("a corrupt line in the middle was accepted")
	}
	// A read-only (dry-run) open creates nothing.
	none := filepath.Join(t.TempDir(), "none.jsonl")
	if _, err := OpenJournal(none, "https://dst", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Error("a dry run created the id map")
	}
}
