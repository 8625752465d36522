package churn

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The unowned time counts, per partition, the time between losing its last
// owner (a revoke, or the owner's exit) and its next assignment.
func TestUnownedCountsRevokedAndDeadTime(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	log0 := "time=" + at(0).Format(time.RFC3339Nano) + ` level=INFO msg="inorder: partitions assigned" group=g partitions="churn[0 1]"` + "\n" +
		"time=" + at(1000).Format(time.RFC3339Nano) + ` level=INFO msg="inorder: partitions revoked" group=g partitions="churn[1]"` + "\n"
	log1 := "time=" + at(1300).Format(time.RFC3339Nano) + ` level=INFO msg="inorder: partitions assigned" group=g partitions="churn[1]"` + "\n"
	dir := t.TempDir()
	var events []ownEvent
	for i, l := range []string{log0, log1} {
		p := filepath.Join(dir, "m.log")
		if err := os.WriteFile(p, []byte(l), 0o644); err != nil {
			t.Fatal(err)
		}
		ev, err := readOwnership(p, i)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev...)
	}
	// Member 0 dies at 2000 holding partition 0; nobody takes it until the end at 2500.
	got := unowned(events, map[int]time.Time{0: at(2000), 1: at(3000)}, 2, at(2500))
	if want := 300*time.Millisecond + 500*time.Millisecond; got != want {
		t.Errorf("unowned %v, want %v (partition 1 revoked 300ms, partition 0 dead 500ms)", got, want)
	}
}

func TestRunRollingRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]RollingConfig{
		"no command": {Dir: t.TempDir()},
		"no dir":     {Command: []string{"x"}},
	} {
		if _, err := RunRolling(t.Context(), cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
	}
}
