package churn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// The handled file is read as it grows, partial lines included; loss is
// judged against the final commit, pending work against the current one.
func TestHandledFileLostAndPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handled.txt")
	h := churn.NewHandled(path, map[int32]int64{0: 6, 1: 4})
	if err := h.Read(); err != nil { // no file yet: nothing handled
		t.Fatal(err)
	}
	write := func(member string, p int32, offs ...int64) {
		t.Helper()
		l, err := adaptertest.OpenHandledLog(path, member)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range offs {
			if err := l.Write(p, o); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write("0", 0, 0, 1, 3)
	write("1", 1, 0, 1, 2, 3, 1)
	// A line cut in the middle is kept until its end arrives.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("2 0 "); err != nil {
		t.Fatal(err)
	}
	if err := h.Read(); err != nil {
		t.Fatal(err)
	}
	if h.Distinct(0) != 3 || h.Distinct(1) != 4 || h.ByMember(1) != 5 || h.ByMember(2) != 0 {
		t.Fatalf("distinct %d %d, member 1 %d, member 2 %d; want 3 4 5 0", h.Distinct(0), h.Distinct(1), h.ByMember(1), h.ByMember(2))
	}
	if _, err := f.WriteString("5\n"); err != nil {
		t.Fatal(err)
	}
	if err := h.Read(); err != nil {
		t.Fatal(err)
	}
	if h.Distinct(0) != 4 || h.ByMember(2) != 1 {
		t.Fatalf("after the line's end: distinct %d, member 2 %d; want 4, 1", h.Distinct(0), h.ByMember(2))
	}
	if got := h.Duplicates(); got != 1 {
		t.Errorf("duplicates %d, want 1 (partition 1 offset 1 handled twice)", got)
	}
	// 8 distinct of 10 messages: with 4 kills at progress, kills 1-4 need
	// 2, 4, 6, 8 handled; kill 5 never comes.
	cfg := churn.Config{Messages: 10, Kills: 4, KillAtProgress: true}
	for done, want := range []bool{true, true, true, true, false} {
		if got := h.Progressed(cfg, done); got != want {
			t.Errorf("kill %d after %d: progressed %v, want %v", done+1, done, got, want)
		}
	}
	if !h.Progressed(churn.Config{Messages: 1000, Kills: 4}, 3) {
		t.Error("without KillAtProgress: not progressed")
	}
	// Partition 0: 0 1 3 5 handled, 2 and 4 not.
	if got := h.Pending(0, 3); got != 1 {
		t.Errorf("pending at or above 3: %d, want 1 (offset 4)", got)
	}
	if got := h.Pending(0, 6); got != 0 {
		t.Errorf("pending at the log end: %d, want 0", got)
	}
	n, lines := h.Lost(map[int32]int64{0: 5, 1: 4})
	if n != 2 || len(lines) != 1 || !strings.Contains(lines[0], "[2 4]") {
		t.Errorf("lost %d %q, want 2 (offsets 2 and 4 of partition 0)", n, lines)
	}
	if n, _ := h.Lost(map[int32]int64{0: 2, 1: 4}); n != 0 {
		t.Errorf("lost below commit 2: %d, want 0 (2 and 4 are above it: pending, not lost)", n)
	}
}

func TestHandledFileRejectsBadLines(t *testing.T) {
	for _, line := range []string{"0 0\n", "0 9 1\n", "0 0 6\n", "x 0 1\n", "0 0 -1\n"} {
		path := filepath.Join(t.TempDir(), "handled.txt")
		if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := churn.NewHandled(path, map[int32]int64{0: 6}).Read(); err == nil {
			t.Errorf("line %q accepted", line)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]churn.Config{
		"no command":      {Dir: t.TempDir()},
		"no dir":          {Command: []string{"x"}},
		"protocol":        {Command: []string{"x"}, Dir: t.TempDir(), Protocol: "sticky"},
		"kill window":     {Command: []string{"x"}, Dir: t.TempDir(), KillMin: 2e9, KillMax: 1e9},
		"kill min age":    {Command: []string{"x"}, Dir: t.TempDir(), KillMinAge: -1},
		"negative kills":  {Command: []string{"x"}, Dir: t.TempDir(), Kills: -1},
		"handler window":  {Command: []string{"x"}, Dir: t.TempDir(), HandlerMin: 2, HandlerMax: 1},
		"negative member": {Command: []string{"x"}, Dir: t.TempDir(), Members: -1},
		"slow fraction":   {Command: []string{"x"}, Dir: t.TempDir(), SlowFraction: 1.5},
		"negative slow":   {Command: []string{"x"}, Dir: t.TempDir(), SlowFraction: 0.1, Slow: -1},
	} {
		if _, err := churn.Run(context.Background(), cfg); !errors.Is(err, churn.ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
	}
}

func TestResultOKOnlyWithoutFindings(t *testing.T) {
	if !(churn.Result{}).OK() {
		t.Fatal("empty result not OK")
	}
	for name, r := range map[string]churn.Result{
		"lost":    {Lost: 1},
		"rewind":  {Rewinds: []string{"x"}},
		"stall":   {Stalls: []string{"x"}},
		"short":   {Short: []string{"x"}},
		"ghost":   {Ghosts: []string{"x"}},
		"stuck":   {Stuck: []string{"x"}},
		"hung":    {Hung: []string{"x"}},
		"failed":  {Failed: []string{"x"}},
		"aborted": {Aborted: "timeout"},
	} {
		if r.OK() {
			t.Errorf("%s: OK", name)
		}
		if len(r.Problems(0)) == 0 && name != "lost" {
			t.Errorf("%s: no problem listed", name)
		}
	}
}
