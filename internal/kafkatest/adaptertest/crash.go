package adaptertest

// The crash tests re-execute the test binary as consumer children that are
// SIGKILLed and restarted. Each child appends "child partition offset" to a
// shared file as its handler finishes; the parent reads the commits before
// each child starts (Coverage) and, at the end, checks the file against them.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/watermark/metadata"
)

// StartChild starts the test binary, running no test, with env added to
// this process's environment (TestMain switches to the child's role on it),
// its stderr to this process's stderr. It returns the command and a reader
// on the child's stdout.
func StartChild(tb testing.TB, env ...string) (*exec.Cmd, *bufio.Reader) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd, bufio.NewReader(stdout)
}

// HandledLog is a crash child's side of the output file. Safe for
// concurrent use.
type HandledLog struct {
	child string
	mu    sync.Mutex
	f     *os.File
}

// OpenHandledLog opens (creates) the output file at path for appending, for
// the child with index child.
func OpenHandledLog(path, child string) (*HandledLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &HandledLog{child: child, f: f}, nil
}

// Write appends "child p o": one O_APPEND write per line, which a SIGKILL
// cannot tear.
func (l *HandledLog) Write(p int32, o int64) error {
	line := l.child + " " + strconv.Itoa(int(p)) + " " + strconv.FormatInt(o, 10) + "\n"
	l.mu.Lock()
	_, err := l.f.WriteString(line)
	l.mu.Unlock()
	return err
}

// Close closes the file.
func (l *HandledLog) Close() error { return l.f.Close() }

// Coverage holds, per partition, the offsets a commit marks done: below the
// committed offset, or in its decoded metadata.
type Coverage map[int32]struct {
	commit int64
	done   func(int64) bool
}

// ReadCoverage reads group's commits of topic; commit metadata that does not
// decode fails the test.
func ReadCoverage(ctx context.Context, tb testing.TB, c *kafkatest.Cluster, group, topic string) Coverage {
	tb.Helper()
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		tb.Fatal(err)
	}
	cov := Coverage{}
	for p, cm := range com {
		set, err := metadata.Decode(cm.Metadata, cm.Offset)
		if err != nil {
			tb.Fatalf("partition %d: our own commit metadata does not decode: %v", p, err)
		}
		cov[p] = struct {
			commit int64
			done   func(int64) bool
		}{cm.Offset, set.Contains}
	}
	return cov
}

// Has reports whether the commit covers offset o of partition p.
func (cv Coverage) Has(p int32, o int64) bool {
	e, ok := cv[p]
	return ok && (o < e.commit || e.done(o))
}

// Handled is the analysis of the children's output file.
type Handled struct {
	PerChild []int // lines written by each child
	Distinct int   // distinct (partition, offset) handled
	Lost     int   // offsets below the log end never handled
	// Again lists the handlings of an offset that a commit made before the
	// handling child started already covered.
	Again []string
}

// ReadHandled reads the output file at path written by children
// 0..len(covAtStart)-1; covAtStart[k] is the coverage read before child k
// started and ends the log end offsets. A malformed line fails the test.
func ReadHandled(tb testing.TB, path string, covAtStart []Coverage, ends map[int32]int64) Handled {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	handled := map[[2]int64]int{}
	h := Handled{PerChild: make([]int, len(covAtStart))}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var child, p, o int64
		if _, err := fmt.Sscan(sc.Text(), &child, &p, &o); err != nil {
			tb.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		handled[[2]int64{p, o}]++
		h.PerChild[child]++
		// Covered by a commit made before this child started: handled again.
		for k := 0; k <= int(child); k++ {
			if covAtStart[k].Has(int32(p), o) {
				h.Again = append(h.Again, fmt.Sprintf("child %d handled %d/%d, committed before child %d started", child, p, o, k))
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	h.Distinct = len(handled)
	for p, e := range ends {
		for o := range e {
			if handled[[2]int64{int64(p), o}] == 0 {
				h.Lost++
			}
		}
	}
	return h
}

// Check fails the test if a message was never handled, if rewinds (from a
// CommitWatch) is not empty, or if a message was handled again after a
// commit covered it.
func (h Handled) Check(tb testing.TB, rewinds []string) {
	tb.Helper()
	if h.Lost != 0 {
		tb.Errorf("%d messages never handled", h.Lost)
	}
	if len(rewinds) != 0 {
		tb.Errorf("committed offsets went down %d times: %v", len(rewinds), rewinds[:min(5, len(rewinds))])
	}
	if len(h.Again) != 0 {
		tb.Errorf("%d messages handled again after a commit covered them: %v", len(h.Again), h.Again[:min(5, len(h.Again))])
	}
}
