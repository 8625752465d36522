package engine

// This file holds what a person running a consumer must be told, once and
// loudly, then quietly: a subscribed topic that does not exist, brokers
// that cannot be reached, a Run that never joined its group; and the Info
// story every adapter tells the same way (assignments, revocations, dead
// letters) and the stack of a recovered panic.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// MistakeEvery is the least time between two Warn lines about the same
// mistake (a missing topic, unreachable brokers): the first is logged at
// once, the repeats at most this often.
const MistakeEvery = time.Minute

// minEpisodeGap is the least time without a connection failure that ends
// an outage (see ConnFailed); a variable for tests.
var minEpisodeGap = 30 * time.Second

// Watch is one Run's account of the mistakes a person must hear about and
// of its group membership: adapters report connection failures and
// successes, missing topics, assignments and revocations to it; it logs
// them (see MistakeEvery) and turns a Run that never joined into
// ErrNeverJoined. Safe for concurrent use.
type Watch struct {
	log     *slog.Logger
	brokers []string
	group   string
	timeout time.Duration

	mu        sync.Mutex
	joined    bool
	answered  bool      // a broker answered once (Connected)
	failSince time.Time // when the connection failures began; zero while connected
	lastFail  time.Time // the last connection failure
	lastErr   error     // the last connection or join error
	connWarn  time.Time // the last Warn about the connection (kept across Connected: the bound holds for a flapping broker)
	warned    bool      // the current outage was warned about
	connQuiet int       // connection failures not logged at Warn since connWarn
	topicWarn map[string]time.Time
}

// NewWatch returns the watch of one Run of group on brokers; a connection
// failing for requestTimeout is worth a Warn. Log lines go to cfg.Logger.
func NewWatch(cfg Config, brokers []string, requestTimeout time.Duration) *Watch {
	return &Watch{
		log:       cfg.Logger,
		brokers:   slices.Clone(brokers),
		group:     cfg.Group,
		timeout:   requestTimeout,
		failSince: time.Now(),
		topicWarn: map[string]time.Time{},
	}
}

// ConnFailed reports that a connection to a broker (or a request over it)
// failed with err. It is logged at Debug; once no broker has answered for
// RequestTimeout, one Warn names the brokers and err, and further failures
// are logged at Warn at most once per MistakeEvery, with the count left
// out. Failures further apart than the episode gap (3 RequestTimeouts,
// at least 30s: every client retries a dead broker more often) are not
// one outage but routine disconnects: the later one starts a new count.
func (w *Watch) ConnFailed(err error) {
	now := time.Now()
	w.mu.Lock()
	w.lastErr = err
	gap := max(3*w.timeout, minEpisodeGap)
	if w.failSince.IsZero() || (!w.lastFail.IsZero() && now.Sub(w.lastFail) > gap) {
		w.failSince = now
	}
	w.lastFail = now
	since := w.failSince
	warn := now.Sub(since) >= w.timeout && (w.connWarn.IsZero() || now.Sub(w.connWarn) >= MistakeEvery)
	quiet, answered := w.connQuiet, w.answered
	if warn {
		w.connWarn, w.connQuiet, w.warned = now, 0, true
	} else {
		w.connQuiet++
	}
	w.mu.Unlock()
	if !warn {
		w.log.Debug("inorder: broker connection failed", "group", w.group, "error", err)
		return
	}
	msg := "inorder: cannot connect to any broker; retrying (check the broker addresses and the network)"
	if answered {
		// Some broker answered before: this one, or all, may be down.
		msg = "inorder: broker connections keep failing; retrying (check the brokers and the network)"
	}
	w.log.Warn(msg, "group", w.group, "brokers", strings.Join(w.brokers, ","), "error", err,
		"failing_for", now.Sub(since).Round(time.Millisecond), "failures_not_logged", quiet)
}

// Connected reports that a broker answered: a later failure starts a new
// RequestTimeout before it is worth a Warn (and the next Warn still comes
// at most once per MistakeEvery). After a Warn about the outage it logs,
// at Info, that the brokers answer again.
func (w *Watch) Connected() {
	w.mu.Lock()
	warned := w.warned
	w.failSince, w.connQuiet, w.warned = time.Time{}, 0, false
	w.answered = true
	w.mu.Unlock()
	if warned {
		w.log.Info("inorder: connected to the brokers again", "group", w.group)
	}
}

// JoinFailed records err, a failure to join the group, for ErrNeverJoined;
// it does not log (the adapter does, or ConnFailed).
func (w *Watch) JoinFailed(err error) {
	w.mu.Lock()
	w.lastErr = err
	w.mu.Unlock()
}

// MissingTopic reports that topic, subscribed, does not exist: a Warn
// naming it, repeated at most once per MistakeEvery for the same topic.
func (w *Watch) MissingTopic(topic string) {
	now := time.Now()
	w.mu.Lock()
	last, seen := w.topicWarn[topic]
	warn := !seen || now.Sub(last) >= MistakeEvery
	if warn {
		w.topicWarn[topic] = now
	}
	w.mu.Unlock()
	if warn {
		w.log.Warn("inorder: subscribed topic does not exist; waiting for it to be created",
			"group", w.group, "topic", topic)
	}
}

// WatchTopics looks up the subscribed topics with missing (which returns
// the ones that do not exist) until ctx ends or the returned stop is
// called, and reports each missing one (see MissingTopic): at once, then
// every MistakeEvery; a failed lookup is retried after RequestTimeout. stop
// waits for the goroutine; call it before the client lookup uses is
// closed.
func (w *Watch) WatchTopics(ctx context.Context, missing func(context.Context) ([]string, error)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			wait := MistakeEvery
			ts, err := missing(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				wait = w.timeout
			default:
				w.Connected()
				for _, t := range ts {
					w.MissingTopic(t)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// Joined reports that the group answered this member (an assignment, empty
// or not).
func (w *Watch) Joined() {
	w.mu.Lock()
	w.joined = true
	w.mu.Unlock()
	w.Connected()
}

// Assigned logs, at Info, one line naming the partitions newly assigned to
// this member (an empty assignment only at the first join), and counts as
// Joined.
func (w *Watch) Assigned(tps []TopicPartition) {
	w.mu.Lock()
	first := !w.joined
	w.mu.Unlock()
	w.Joined()
	if len(tps) > 0 || first {
		w.log.Info("inorder: partitions assigned", "group", w.group, "partitions", FormatPartitions(tps))
	}
}

// Revoked logs, at Info, one line naming the partitions this member gives
// up (lost: taken without a commit, at Warn).
func (w *Watch) Revoked(tps []TopicPartition, lost bool) {
	if len(tps) == 0 {
		return
	}
	if lost {
		w.log.Warn("inorder: partitions lost (not committed)", "group", w.group, "partitions", FormatPartitions(tps))
		return
	}
	w.log.Info("inorder: partitions revoked", "group", w.group, "partitions", FormatPartitions(tps))
}

// End returns what Run returns given err, the error it was about to
// return: err itself when not nil or when the group was joined, else an
// error wrapping ErrNeverJoined (and the last connection or join error).
func (w *Watch) End(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err != nil || w.joined:
		return err
	case w.lastErr != nil:
		return fmt.Errorf("%w %q (brokers %s): last error: %w", ErrNeverJoined, w.group,
			strings.Join(w.brokers, ","), w.lastErr)
	}
	return fmt.Errorf("%w %q (brokers %s)", ErrNeverJoined, w.group, strings.Join(w.brokers, ","))
}

// FormatPartitions writes tps as "topic[0 1 2] other[3]", topics and
// partitions sorted; "none" when empty.
func FormatPartitions(tps []TopicPartition) string {
	if len(tps) == 0 {
		return "none"
	}
	s := slices.Clone(tps)
	slices.SortFunc(s, func(a, b TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	var b strings.Builder
	for i, tp := range s {
		switch {
		case i == 0:
			fmt.Fprintf(&b, "%s[%d", tp.Topic, tp.Partition)
		case tp.Topic != s[i-1].Topic:
			fmt.Fprintf(&b, "] %s[%d", tp.Topic, tp.Partition)
		default:
			fmt.Fprintf(&b, " %d", tp.Partition)
		}
	}
	b.WriteString("]")
	return b.String()
}

// IsConnError reports whether err is a failure to reach a broker: a dial
// or network error, a refused or reset connection, a timeout, an
// unresolvable host.
func IsConnError(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	var dns *net.DNSError
	var ne net.Error
	return errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded)
}

// ErrorType names err as the user's code made it, for the dead-letter
// header HeaderExceptionFQCN and the metrics' error.type: the Go type
// (fmt's %T) of err once our own wrappers (Permanent's) are looked
// through; for a recovered panic "panic(T)", T the panic value's type
// (e.g. "panic(runtime.boundsError)"); "" for nil.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	for {
		p, ok := err.(permanentError)
		if !ok || p.err == nil {
			break
		}
		err = p.err
	}
	if p, ok := err.(*panicError); ok {
		return fmt.Sprintf("panic(%T)", p.v)
	}
	return typeName(err)
}

// rootCause returns the innermost error of err's chain as errors.Unwrap
// walks it, and through a recovered panic whose value is an error.
func rootCause(err error) error {
	for {
		if p, ok := err.(*panicError); ok {
			v, isErr := p.v.(error)
			if !isErr {
				return err
			}
			err = v
			continue
		}
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// panicError is a recovered panic of the handler or the dead letter:
// errors.Is finds ErrPanic, and the panic value when it is an error.
type panicError struct {
	what string // "handler" or "dead letter"
	v    any
}

func (p *panicError) Error() string {
	if p.what == "handler" {
		return fmt.Sprintf("%v: %v", ErrPanic, p.v)
	}
	return fmt.Sprintf("%v: %s: %v", ErrPanic, p.what, p.v)
}

func (p *panicError) Unwrap() []error {
	if err, ok := p.v.(error); ok {
		return []error{ErrPanic, err}
	}
	return []error{ErrPanic}
}

// logEvery limits a kind of Engine log line to one per second; the lines
// left out are counted in the next one.
type logEvery struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// turn reports whether a line may be logged now, and how many were left
// out since the last one.
func (l *logEvery) turn() (bool, int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < time.Second {
		l.skipped++
		return false, 0
	}
	n := l.skipped
	l.last, l.skipped = now, 0
	return true, n
}

// engineNotes are the Engine's rate-limited log lines.
type engineNotes struct {
	deadLetters logEvery
	panics      logEvery
}

// recovered turns r, a panic recovered from the handler (what names the
// call: "handler" or "dead letter"), into the error the engine handles,
// and logs it at Error with its stack (at most once a second).
func (e *Engine[M]) recovered(what string, r any) error {
	err := &panicError{what: what, v: r}
	if ok, skipped := e.notes.panics.turn(); ok {
		e.log.Error("inorder: recovered a panic in the "+what, "panic", fmt.Sprint(r),
			"stack", string(debug.Stack()), "panics_not_logged", skipped)
	}
	return err
}

// deadLettered logs, at Info, that the dead letter took the message at
// offset of p, which failed with err (at most once a second; the count
// left out is in the next line), and counts the message finished.
func (e *Engine[M]) deadLettered(p *Part, offset int64, err error) {
	if p.m != nil {
		p.m.finished.Add(1)
	}
	if ok, skipped := e.notes.deadLetters.turn(); ok {
		e.log.Info("inorder: message dead-lettered", "topic", p.TP.Topic, "partition", p.TP.Partition,
			"offset", offset, "error", err, "error_type", ErrorType(err), "dead_letters_not_logged", skipped)
	}
}

// finish counts a message of p finished: acked after its handler returned
// nil, or after a failure the error policy acks. Workers call it.
func (e *Engine[M]) finish(p *Part) {
	if p.m != nil {
		p.m.finished.Add(1)
	}
}

// errorTypeOpts returns the record options of a failed handler
// call of pm: the process attributes and error.type naming err (see
// ErrorType); "_OTHER" when the type has no name. Allocates: failed
// calls only, when a reader collects the histogram.
func errorTypeOpts(pm *partMetrics, err error) []metric.RecordOption {
	t := ErrorType(err)
	if t == "" {
		return pm.procFail
	}
	kv := append(pm.proc[:len(pm.proc):len(pm.proc)], semconv.ErrorTypeKey.String(t))
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}
