package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// rejectedError is a user's error type.
type rejectedError struct{ why string }

func (e *rejectedError) Error() string { return "rejected: " + e.why }

// logBuf is a slog handler's output, safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines that contain every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for ln := range strings.SplitSeq(l.b.String(), "\n") {
		ok := ln != ""
		for _, s := range subs {
			ok = ok && strings.Contains(ln, s)
		}
		if ok {
			out = append(out, ln)
		}
	}
	return out
}

func bufLogger(level slog.Level) (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level})), b
}

func TestErrorTypeNamesTheUsersErrorThroughPermanent(t *testing.T) {
	user := &rejectedError{"no stock"}
	for _, err := range []error{user, engine.Permanent(user), engine.Permanent(engine.Permanent(user))} {
		if got := engine.ErrorType(err); got != "*engine_test.rejectedError" {
			t.Errorf("ErrorType(%#v) = %q, want *engine_test.rejectedError", err, got)
		}
		d := engine.DeadLetter{Topic: "orders", Err: err}
		info, perr := engine.ParseDeadLetterHeaders(d.RecordHeaders())
		if perr != nil {
			t.Fatal(perr)
		}
		if info.ErrType != "*engine_test.rejectedError" || info.ErrCauseType != "*engine_test.rejectedError" {
			t.Errorf("headers of %#v: fqcn %q, cause %q, want both *engine_test.rejectedError", err, info.ErrType, info.ErrCauseType)
		}
	}
	if got := engine.ErrorType(fmt.Errorf("wrapped by the user: %w", user)); got != "*fmt.wrapError" {
		t.Errorf("a user's own wrapping is the user's type: got %q, want *fmt.wrapError", got)
	}
	if got := engine.ErrorType(engine.Permanent(engine.PanicError("handler", "boom"))); got != "panic(string)" {
		t.Errorf("ErrorType of a recovered panic(\"boom\") = %q, want panic(string)", got)
	}
	for _, c := range []struct {
		err         error
		fqcn, cause string
	}{
		{engine.PanicError("handler", "boom"), "panic(string)", "panic(string)"},
		{engine.PanicError("handler", fmt.Errorf("ctx: %w", user)), "panic(*fmt.wrapError)", "*engine_test.rejectedError"},
	} {
		d := engine.DeadLetter{Topic: "orders", Err: c.err}
		info, perr := engine.ParseDeadLetterHeaders(d.RecordHeaders())
		if perr != nil {
			t.Fatal(perr)
		}
		if info.ErrType != c.fqcn || info.ErrCauseType != c.cause {
			t.Errorf("headers of %v: fqcn %q, cause %q, want %q and %q", c.err, info.ErrType, info.ErrCauseType, c.fqcn, c.cause)
		}
	}
	var ue *rejectedError
	if perr := engine.PanicError("handler", user); !errors.Is(perr, engine.ErrPanic) || !errors.As(perr, &ue) ||
		perr.Error() != "inorder: handler panicked: rejected: no stock" {
		t.Errorf("a panic with an error: %v; errors.Is ErrPanic and errors.As the value must hold", perr)
	}
	if got := engine.ErrorType(nil); got != "" {
		t.Errorf("ErrorType(nil) = %q, want empty", got)
	}
}

// TestMetricsNameTheErrorTypeLogDeadLettersAndCountFinished runs 6
// messages: offset 0 fails with Permanent(&rejectedError{}) and is
// dead-lettered at once, offset 3 fails once and then succeeds, the others
// succeed.
func TestMetricsNameTheErrorTypeLogDeadLettersAndCountFinished(t *testing.T) {
	r, mp := sdkProvider(t)
	log, buf := bufLogger(slog.LevelInfo)
	c := cfg().ForGroup("g")
	c.MeterProvider = mp
	c.Logger = log
	c.Concurrency = 1 // offset 0 is the first call
	c.Retry = engine.Retry{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
	var dead []string
	var mu sync.Mutex
	c.DeadLetter = func(_ context.Context, msg any, err error, attempts int) error {
		mu.Lock()
		defer mu.Unlock()
		dead = append(dead, fmt.Sprintf("%d %s %d", msg.(kmsg).off, engine.ErrorType(err), attempts))
		return nil
	}
	failed3 := false
	const n = 6
	_, _, p, _ := startOne(t, c, n, func(_ context.Context, m kmsg) error {
		switch {
		case m.off == 0:
			return engine.Permanent(&rejectedError{"bad"})
		case m.off == 3 && !failed3:
			failed3 = true
			return errors.New("transient")
		}
		return nil
	})
	waitUntil(t, func() bool { return p.Watermark().Committable() == n })
	rd := collect(t, r)
	rd.expect(t, 1, engine.MetricProcessDuration, pid, "0", "error.type", "*engine_test.rejectedError")
	rd.absent(t, engine.MetricProcessDuration, pid, "0", "error.type", "_OTHER")
	rd.expect(t, n, engine.MetricFinished, pid, "0")
	rd.expect(t, 1, engine.MetricDeadLettered, pid, "0")
	// Every attempt: 6 first calls, offset 3's retry.
	if got, _ := rd.value(engine.MetricConsumed, pid, "0"); got < n+1 {
		t.Errorf("consumed %v, want at least %d (every attempt)", got, n+1)
	}
	mu.Lock()
	if want := []string{"0 *engine_test.rejectedError 1"}; fmt.Sprint(dead) != fmt.Sprint(want) {
		t.Errorf("dead letters %v, want %v", dead, want)
	}
	mu.Unlock()
	lines := buf.lines("level=INFO", "message dead-lettered")
	if len(lines) != 1 {
		t.Fatalf("dead-letter Info lines: %q, want 1", lines)
	}
	for _, want := range []string{"topic=t", "partition=0", "offset=0", "error=\"rejected: bad\"", "error_type=*engine_test.rejectedError"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("dead-letter line %q lacks %s", lines[0], want)
		}
	}
}

func panicInHandler(o int64) error {
	if o >= 0 {
		panic(fmt.Sprintf("handler blew up at %d", o))
	}
	return nil
}

func TestRecoveredPanicIsLoggedWithItsStackAtMostOnceASecond(t *testing.T) {
	log, buf := bufLogger(slog.LevelInfo)
	c := cfg()
	c.Logger = log
	const n = 50
	_, _, p, _ := startOne(t, c, n, func(_ context.Context, m kmsg) error { return panicInHandler(m.off) })
	waitUntil(t, func() bool { return p.Watermark().Committable() == n }) // LogAndAck
	lines := buf.lines("level=ERROR", "recovered a panic in the handler")
	if len(lines) < 1 || len(lines) > 2 {
		t.Fatalf("%d panic lines, want 1 (or 2 if the run spanned a second): %q", len(lines), lines)
	}
	for _, want := range []string{"handler blew up at", "stack=", "engine_test.panicInHandler", "mistakes_test.go"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("panic line lacks %q: %s", want, lines[0])
		}
	}
}

func TestWatchWarnsOnceAboutUnreachableBrokersThenQuietly(t *testing.T) {
	log, buf := bufLogger(slog.LevelDebug)
	c := cfg().ForGroup("g")
	c.Logger = log
	w := engine.NewWatch(c, []string{"127.0.0.1:1", "127.0.0.1:2"}, 50*time.Millisecond)
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	w.ConnFailed(refused) // within RequestTimeout: Debug only
	if got := buf.lines("level=WARN"); len(got) != 0 {
		t.Fatalf("a Warn before RequestTimeout: %q", got)
	}
	time.Sleep(60 * time.Millisecond)
	for range 100 {
		w.ConnFailed(refused)
	}
	warns := buf.lines("level=WARN")
	if len(warns) != 1 {
		t.Fatalf("%d Warn lines after 101 failures, want 1: %q", len(warns), warns)
	}
	for _, want := range []string{"cannot connect to any broker", "brokers=127.0.0.1:1,127.0.0.1:2", "connection refused"} {
		if !strings.Contains(warns[0], want) {
			t.Errorf("Warn lacks %q: %s", want, warns[0])
		}
	}
	if d := buf.lines("level=DEBUG", "broker connection failed"); len(d) != 100 {
		t.Errorf("%d Debug lines, want 100 (every failure not warned about)", len(d))
	}
	err := w.End(nil)
	if !errors.Is(err, engine.ErrNeverJoined) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("End(nil) before joining = %v, want ErrNeverJoined with the last error", err)
	}
	w.Assigned(nil)
	if err := w.End(nil); err != nil {
		t.Errorf("End(nil) after joining = %v, want nil", err)
	}
	if got := buf.lines("level=INFO", "connected to the brokers again"); len(got) != 1 {
		t.Errorf("reconnect Info lines %q, want 1", got)
	}
	other := errors.New("other")
	if err := w.End(other); err != other {
		t.Errorf("End(err) = %v, want err itself", err)
	}
}

func TestWatchNamesAMissingTopicOnceAMinute(t *testing.T) {
	log, buf := bufLogger(slog.LevelInfo)
	c := cfg().ForGroup("g")
	c.Logger = log
	w := engine.NewWatch(c, []string{"b:9092"}, time.Second)
	for range 10 {
		w.MissingTopic("nope")
		w.MissingTopic("other")
	}
	for _, topic := range []string{"nope", "other"} {
		if got := buf.lines("level=WARN", "topic does not exist", "topic="+topic); len(got) != 1 {
			t.Errorf("Warn lines for %s: %q, want 1", topic, got)
		}
	}
	lookups := 0
	stop := w.WatchTopics(context.Background(), func(context.Context) ([]string, error) {
		lookups++
		return []string{"third"}, nil
	})
	deadline := time.Now().Add(5 * time.Second)
	for len(buf.lines("topic=third")) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if got := buf.lines("level=WARN", "topic=third"); len(got) != 1 || lookups != 1 {
		t.Errorf("WatchTopics: %d lookups, Warn lines %q; want 1 and 1", lookups, got)
	}
	if err := w.End(nil); !errors.Is(err, engine.ErrNeverJoined) {
		t.Errorf("End(nil) = %v, want ErrNeverJoined", err)
	}
}

func TestWatchLogsAssignmentsAndRevocationsOneLineEach(t *testing.T) {
	log, buf := bufLogger(slog.LevelInfo)
	c := cfg().ForGroup("g")
	c.Logger = log
	w := engine.NewWatch(c, []string{"b:9092"}, time.Second)
	w.Assigned([]engine.TopicPartition{{Topic: "b", Partition: 1}, {Topic: "a", Partition: 2}, {Topic: "a", Partition: 0}})
	w.Revoked([]engine.TopicPartition{{Topic: "a", Partition: 2}}, false)
	w.Revoked([]engine.TopicPartition{{Topic: "b", Partition: 1}}, true)
	if got := buf.lines("level=INFO", "partitions assigned", `partitions="a[0 2] b[1]"`); len(got) != 1 {
		t.Errorf("assigned lines %q, want 1", got)
	}
	if got := buf.lines("level=INFO", "partitions revoked", "partitions=a[2]"); len(got) != 1 {
		t.Errorf("revoked lines %q, want 1", got)
	}
	if got := buf.lines("level=WARN", "partitions lost", "partitions=b[1]"); len(got) != 1 {
		t.Errorf("lost lines %q, want 1", got)
	}
}

func TestWatchTakesFailuresFarApartForRoutineDisconnects(t *testing.T) {
	engine.SetMinEpisodeGap(t, 0) // the gap is then 3 RequestTimeouts: 60ms
	log, buf := bufLogger(slog.LevelInfo)
	c := cfg().ForGroup("g")
	c.Logger = log
	w := engine.NewWatch(c, []string{"b:9092"}, 20*time.Millisecond)
	w.Joined()
	closed := errors.New("broker closed the idle connection")
	w.ConnFailed(closed)
	time.Sleep(100 * time.Millisecond)
	w.ConnFailed(closed) // 100ms after the last one: a new outage, 0ms old
	if got := buf.lines("level=WARN"); len(got) != 0 {
		t.Fatalf("two failures 100ms apart (gap 60ms) warned: %q", got)
	}
	// Failures every 5ms: an outage, past RequestTimeout after 20ms (a
	// loaded machine's longer sleeps only start it again; the deadline is
	// a hang guard).
	for deadline := time.Now().Add(10 * time.Second); len(buf.lines("level=WARN")) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		w.ConnFailed(closed)
	}
	if got := buf.lines("level=WARN", "broker connections keep failing"); len(got) != 1 {
		t.Fatalf("an outage past RequestTimeout after a broker answered: Warn lines %q, want 1", got)
	}
}

func TestWatchWarnsAtMostOnceAMinuteAboutAFlappingBroker(t *testing.T) {
	log, buf := bufLogger(slog.LevelInfo)
	c := cfg().ForGroup("g")
	c.Logger = log
	w := engine.NewWatch(c, []string{"b:9092"}, 10*time.Millisecond)
	flap := errors.New("connection reset by peer")
	for range 5 {
		// Each round: an outage past RequestTimeout (the deadline is a
		// hang guard), then a broker answers.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
			w.ConnFailed(flap)
			if time.Since(deadline.Add(-5*time.Second)) > 30*time.Millisecond {
				break
			}
		}
		w.Connected()
	}
	if got := buf.lines("level=WARN"); len(got) != 1 {
		t.Fatalf("5 outages within a minute: Warn lines %q, want 1", got)
	}
	if got := buf.lines("level=INFO", "connected to the brokers again"); len(got) != 1 {
		t.Fatalf("reconnect lines %q, want 1 (after the warned outage only)", got)
	}
}

// A broker that refuses every commit for a while is one episode in the
// log: a Warn at its first failure, none for the next ones (within a
// minute), an Info when a commit lands again; and a second episode gets its
// own Warn.
func TestCommitFailuresAreLoggedOncePerEpisode(t *testing.T) {
	log, buf := bufLogger(slog.LevelInfo)
	c := cfg()
	c.Logger = log
	e := started(t, c, func(context.Context, int64) error { return nil })
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	defer s.Close(context.Background())
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	deliver := func() {
		if _, err := s.Offer(p, []int64{next}, []int64{next}, 0); err != nil {
			t.Fatal(err)
		}
		next++
		waitUntil(t, func() bool { return p.Watermark().Committable() == next })
	}
	refused := errors.New("UNKNOWN_SERVER_ERROR")
	episode := func(failures int) {
		fb.mu.Lock()
		fb.refuse = refused
		fb.mu.Unlock()
		for range failures {
			deliver()
			if err := s.CommitNow(context.Background()); !errors.Is(err, refused) {
				t.Fatalf("CommitNow = %v, want the refusal", err)
			}
		}
		fb.mu.Lock()
		fb.refuse = nil
		fb.mu.Unlock()
		if err := s.CommitNow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	episode(5)
	if got := buf.lines("level=WARN", "commit refused"); len(got) != 1 || !strings.Contains(got[0], "failed_commits=1") {
		t.Fatalf("Warn lines of a 5-commit episode: %q, want 1 (the first failure)", got)
	}
	if got := buf.lines("level=INFO", "commits land again"); len(got) != 1 || !strings.Contains(got[0], "failed_commits=5") {
		t.Fatalf("Info lines after it: %q, want 1 counting 5 failures", got)
	}
	episode(2)
	if got := buf.lines("level=WARN", "commit refused"); len(got) != 2 {
		t.Fatalf("Warn lines after a second episode: %q, want 2", got)
	}
	if got := fb.all(); len(got) != 2 || got[1].Offset != next {
		t.Fatalf("accepted commits %v, want two, the last at %d", got, next)
	}
}
