package engine

// This file holds the options every adapter shares: their defaults, the
// Kafka setting each corresponds to, and their validation. Their doc
// comments are what users read: internal/cmd/genoptions copies them, with
// the options' signatures, the types and the defaults, into each adapter's
// options_shared.go (run go generate ./adapters/... after a change; a test
// fails until then). The adapters add only what their client needs, as
// options over the same Options.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// StartOffset says where to start a partition that has no committed offset,
// or whose committed offset is outside the log (below its start: deleted by
// retention; above its end: the topic was recreated or truncated).
type StartOffset int

const (
	// Earliest starts at the log start. Default. Java: auto.offset.reset=earliest.
	Earliest StartOffset = iota
	// Latest starts at the log end (the last stable offset when reading
	// committed): only messages produced from now on. Java:
	// auto.offset.reset=latest.
	Latest
)

func (s StartOffset) String() string {
	switch s {
	case Earliest:
		return "Earliest"
	case Latest:
		return "Latest"
	}
	return fmt.Sprintf("StartOffset(%d)", int(s))
}

// Defaults of the shared options.
const (
	DefaultSessionTimeout    = 45 * time.Second
	DefaultRebalanceTimeout  = 45 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultFetchMaxBytes     = 1 << 20
	DefaultFetchMaxWait      = 500 * time.Millisecond
	DefaultRequestTimeout    = 10 * time.Second
	DefaultRetryBackoff      = 250 * time.Millisecond
	DefaultMaxRetryBackoff   = 5 * time.Second // the cap of the doubling RetryBackoff waits
	DefaultClientID          = "inorder"

	// FirstFetchBytes is the size of the first fetches of an assignment
	// (see FetchRamp).
	FirstFetchBytes = 64 << 10
)

// FetchRamp is the adapters' slow start of a fetch size: FirstFetchBytes
// (or the configured size if smaller) at first, doubled by each fetch that
// returns records up to the configured size. A response is read and
// decoded whole before its first message is handed out, so a small first
// one starts the handlers early, and they run while the larger ones are
// fetched. The zero value is not ready: use NewFetchRamp.
type FetchRamp struct{ size, max int }

// NewFetchRamp returns the ramp up to max bytes, at its first size.
func NewFetchRamp(max int) FetchRamp { return FetchRamp{min(FirstFetchBytes, max), max} }

// Size is the size to ask for now.
func (r FetchRamp) Size() int { return r.size }

// Grow doubles the size, up to the configured one, and reports whether it
// changed.
func (r *FetchRamp) Grow() bool {
	if r.size == r.max {
		return false
	}
	r.size = min(2*r.size, r.max)
	return true
}

// Options is every setting of an adapter's consumer: the engine's (Config),
// the group and fetch settings every adapter maps onto its client, and the
// adapter's own (Adapter). Options are applied in order; the last one given
// wins. Zero values are never "the default": a default is what you get by
// not passing the option, and an option given a value out of its range is
// refused by NewConsumer, naming it.
type Options struct {
	Config
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	ReadCommitted     bool
	StartOffset       StartOffset
	FetchMaxBytes     int
	FetchMaxWait      time.Duration
	RequestTimeout    time.Duration
	RetryBackoff      time.Duration
	ClientID          string
	// DeadLetterTopic: the topic WithDeadLetter produces failed messages
	// to ("" none). The adapter builds the producer.
	DeadLetterTopic string
	// ConsumerProtocol: the adapter speaks KIP-848's consumer group
	// protocol, where the coordinator sets the heartbeat interval and
	// starts the rebalance timeout when its heartbeat response tells the
	// member what to revoke. Validate then checks RevokeTimeout, not
	// HeartbeatInterval + RevokeTimeout, against RebalanceTimeout.
	ConsumerProtocol bool

	// Adapter holds the adapter's own settings; its options type-assert it
	// (see Own).
	Adapter any

	set  map[string]bool // options given, by name
	errs []error         // options that could not apply (see Fail)
}

// Option configures a consumer. Options of one adapter given to another
// are refused by its NewConsumer, naming the option.
type Option func(*Options)

// NewOptions returns the defaults with adapter as the adapter's own
// settings, then applies opts. It returns the first error an option
// recorded (see Fail); validate the result with Validate.
func NewOptions(adapter any, opts []Option) (*Options, error) {
	o := &Options{
		Config:            DefaultConfig(),
		SessionTimeout:    DefaultSessionTimeout,
		RebalanceTimeout:  DefaultRebalanceTimeout,
		HeartbeatInterval: DefaultHeartbeatInterval,
		ReadCommitted:     true,
		StartOffset:       Earliest,
		FetchMaxBytes:     DefaultFetchMaxBytes,
		FetchMaxWait:      DefaultFetchMaxWait,
		RequestTimeout:    DefaultRequestTimeout,
		RetryBackoff:      DefaultRetryBackoff,
		ClientID:          DefaultClientID,
		Adapter:           adapter,
		set:               map[string]bool{},
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrConfig)
		}
		opt(o)
	}
	if len(o.errs) > 0 {
		return nil, o.errs[0]
	}
	return o, nil
}

// Fail records an option that cannot apply; NewOptions returns it.
func (o *Options) Fail(err error) { o.errs = append(o.errs, err) }

// Mark records that the option name was given.
func (o *Options) Mark(name string) { o.set[name] = true }

// IsSet reports whether the option name was given.
func (o *Options) IsSet(name string) bool { return o.set[name] }

// Transactional validates the transactional id of an exactly-once
// consumer (nil: not one) and sets that mode's default commit interval,
// DefaultTxnCommitInterval, unless CommitInterval was given.
func (o *Options) Transactional(id *string) error {
	if id == nil {
		return nil
	}
	if *id == "" {
		return fmt.Errorf("%w: WithTransactionalID: the transactional id is empty", ErrConfig)
	}
	if !o.IsSet("CommitInterval") {
		o.CommitInterval = DefaultTxnCommitInterval
	}
	return nil
}

// Own returns the adapter's settings as a *T, or records an error naming
// option (an option of another adapter) and returns a throwaway *T.
func Own[T any](o *Options, pkg, option string) *T {
	if t, ok := o.Adapter.(*T); ok {
		return t
	}
	o.Fail(fmt.Errorf("%w: %s is an option of package %s", ErrConfig, option, pkg))
	return new(T)
}

func mark(name string, f func(o *Options)) Option {
	return func(o *Options) { o.Mark(name); f(o) }
}

// WithConcurrency sets the number of goroutines running the handler, shared
// by all partitions. Default 16; at least 1. (The Java consumer has no
// equivalent; Confluent's Parallel Consumer calls it maxConcurrency.)
func WithConcurrency(n int) Option {
	return mark("Concurrency", func(o *Options) { o.Concurrency = n })
}

// WithWindow sets the largest span of offsets, per partition, between the
// commit point and the newest message handed out. When a slow message holds
// the commit point and the window fills, that partition's fetching pauses
// (back-pressure) while the others go on; it also bounds redelivery after a
// crash. Default watermark.DefaultWindow (81880); range
// 1..watermark.MaxWindow.
func WithWindow(n int) Option { return mark("Window", func(o *Options) { o.Window = n }) }

// WithMaxBufferedBytes bounds the memory of the messages fetched and not yet
// handled: their key, value and header bytes, summed over every partition
// of the consumer (queued, running, waiting for a retry, or fetched beyond
// a full window). From n/2 on, a partition holding its share (n divided by
// the partitions owned) or more is paused; from n on, every partition
// holding anything is, until the sum is back under ¾ n. A partition holding
// nothing always fetches, so a hot partition cannot starve the others; the
// sum stays within n plus about one fetch per partition. A message larger
// than n still goes through, alone. The process's RSS is about twice the
// sum plus the runtime and the client (the Go heap grows to twice what is
// live at GOGC=100; GOMEMLIMIT keeps it closer). The client's own buffers come on top (the adapter's note below
// says how it bounds them). Default 64 MiB; positive. Java (librdkafka):
// queued.max.messages.kbytes bounds the client's queue alike.
func WithMaxBufferedBytes(n int64) Option {
	return mark("MaxBufferedBytes", func(o *Options) { o.MaxBufferedBytes = n })
}

// WithCommitInterval sets how often the commit points that moved are
// committed; revokes and shutdown commit at once as well. Default 1s;
// positive. Corresponds to the Java auto.commit.interval.ms.
func WithCommitInterval(d time.Duration) Option {
	return mark("CommitInterval", func(o *Options) { o.CommitInterval = d })
}

// WithRevokeTimeout bounds a whole revoke (on rebalance, or at shutdown):
// the wait for in-flight messages and the commit of what is done. Default
// 10s; positive, and HeartbeatInterval + RevokeTimeout must be below
// RebalanceTimeout (a member notices a rebalance at its next heartbeat,
// then revokes; the coordinator waits RebalanceTimeout for it); with the
// consumer group protocol (KIP-848), whose coordinator starts that wait
// when it tells the member what to revoke, RevokeTimeout alone. Handlers
// still running when it expires at shutdown are abandoned (logged).
func WithRevokeTimeout(d time.Duration) Option {
	return mark("RevokeTimeout", func(o *Options) { o.RevokeTimeout = d })
}

// WithErrorPolicy sets what a handler error or panic does: LogAndAck
// (default) or Stop.
func WithErrorPolicy(p ErrorPolicy) Option {
	return mark("ErrorPolicy", func(o *Options) { o.ErrorPolicy = p })
}

// WithLogger sets the logger; the client's own log lines go to it too (its
// routine chatter at Debug). Default slog.Default(); not nil.
func WithLogger(l *slog.Logger) Option { return mark("Logger", func(o *Options) { o.Logger = l }) }

// WithMetadataMaxBytes sets the size budget of the commit metadata that
// records which messages above the commit point are already handled (so a
// restart or the next owner skips them). Default 4096, the broker's
// offset.metadata.max.bytes default; larger values need that broker
// setting raised. 0 disables commit metadata (and ignores metadata found).
// When the done set does not fit, a prefix is committed and Stats counts a
// miss.
func WithMetadataMaxBytes(n int) Option {
	return mark("MetadataMaxBytes", func(o *Options) { o.MetadataMaxBytes = n })
}

// WithSessionTimeout sets the group session timeout: how long the
// coordinator waits for a heartbeat before it evicts this member. Default
// 45s (Kafka's). Corresponds to the Java session.timeout.ms.
func WithSessionTimeout(d time.Duration) Option {
	return mark("SessionTimeout", func(o *Options) { o.SessionTimeout = d })
}

// WithRebalanceTimeout sets how long the coordinator waits for members to
// rejoin during a rebalance. A member that dies mid-rebalance holds the
// whole group this long. The adapters poll continuously, so it can be far
// below the Java client's 5 minutes. Default 45s (librdkafka requires it to
// be at least the session timeout). Corresponds to the Java
// max.poll.interval.ms (which the Java client sends as the rebalance
// timeout).
func WithRebalanceTimeout(d time.Duration) Option {
	return mark("RebalanceTimeout", func(o *Options) { o.RebalanceTimeout = d })
}

// WithHeartbeatInterval sets how often the member heartbeats; a rebalance
// is noticed at the next heartbeat. Default 3s; below SessionTimeout.
// Corresponds to the Java heartbeat.interval.ms.
func WithHeartbeatInterval(d time.Duration) Option {
	return mark("HeartbeatInterval", func(o *Options) { o.HeartbeatInterval = d })
}

// WithReadCommitted sets whether only committed transactional messages are
// read (aborted ones and transaction markers are then gaps that do not hold
// the commit point). Default true. Corresponds to the Java
// isolation.level (read_committed, read_uncommitted).
func WithReadCommitted(on bool) Option {
	return mark("ReadCommitted", func(o *Options) { o.ReadCommitted = on })
}

// WithStartOffset sets where to start a partition without a committed
// offset, or whose committed offset is outside the log: Earliest (default)
// or Latest. Corresponds to the Java auto.offset.reset. An out-of-range
// commit is logged at Warn when the policy is applied to it.
func WithStartOffset(s StartOffset) Option {
	return mark("StartOffset", func(o *Options) { o.StartOffset = s })
}

// WithFetchMaxBytes sets the most bytes one fetch returns per partition.
// Default 1 MiB; range 1..2^31-1. Corresponds to the Java
// max.partition.fetch.bytes.
func WithFetchMaxBytes(n int) Option {
	return mark("FetchMaxBytes", func(o *Options) { o.FetchMaxBytes = n })
}

// WithFetchMaxWait sets how long the broker may hold a fetch when there is
// no new data. Default 500ms; range 1ms..2^31-1 ms (the protocol carries
// whole milliseconds). Corresponds to the Java fetch.max.wait.ms.
func WithFetchMaxWait(d time.Duration) Option {
	return mark("FetchMaxWait", func(o *Options) { o.FetchMaxWait = d })
}

// WithRequestTimeout bounds each request the consumer makes itself besides
// fetches (committed offsets, log offsets, commits). Default 10s; at least
// 1ms. Corresponds to the Java request.timeout.ms.
func WithRequestTimeout(d time.Duration) Option {
	return mark("RequestTimeout", func(o *Options) { o.RequestTimeout = d })
}

// WithRetryBackoff sets the first wait after a failed request (fetch,
// offset lookup, group join); it doubles up to 5s (or stays at d if d is
// longer). Default 250ms; positive. Corresponds to the Java
// retry.backoff.ms.
func WithRetryBackoff(d time.Duration) Option {
	return mark("RetryBackoff", func(o *Options) { o.RetryBackoff = d })
}

// WithClientID sets the client id sent with every request (group
// membership, fetches, commits, metadata), as brokers log and quota it.
// Default "inorder"; not empty. Corresponds to the Java client.id.
func WithClientID(id string) Option { return mark("ClientID", func(o *Options) { o.ClientID = id }) }

// WithStuckThreshold sets how long a partition's commit point may stay put
// while messages are pending before it is logged at Warn, with its oldest
// pending offset (once per episode; an Info line when it moves again).
// Default 1m; positive. (Parallel Consumer users watch its
// waiting.records gauge for this.)
func WithStuckThreshold(d time.Duration) Option {
	return mark("StuckThreshold", func(o *Options) { o.StuckThreshold = d })
}

const maxInt32 = 1<<31 - 1

// Validate returns an error wrapping ErrConfig and naming the option for
// the first bad setting among the shared ones.
func (o *Options) Validate() error {
	if err := o.Config.Validate(); err != nil {
		return err
	}
	ms := time.Millisecond
	switch {
	case o.SessionTimeout < ms:
		return fmt.Errorf("%w: SessionTimeout must be at least 1ms, got %v", ErrConfig, o.SessionTimeout)
	case o.RebalanceTimeout < ms:
		return fmt.Errorf("%w: RebalanceTimeout must be at least 1ms, got %v", ErrConfig, o.RebalanceTimeout)
	case o.HeartbeatInterval < ms:
		return fmt.Errorf("%w: HeartbeatInterval must be at least 1ms, got %v", ErrConfig, o.HeartbeatInterval)
	case o.HeartbeatInterval >= o.SessionTimeout:
		return fmt.Errorf("%w: HeartbeatInterval (%v) must be below SessionTimeout (%v)",
			ErrConfig, o.HeartbeatInterval, o.SessionTimeout)
	case o.ConsumerProtocol && o.RevokeTimeout >= o.RebalanceTimeout:
		return fmt.Errorf("%w: RevokeTimeout (%v) must be below RebalanceTimeout (%v): "+
			"the coordinator tells a member what to revoke and waits RebalanceTimeout for it",
			ErrConfig, o.RevokeTimeout, o.RebalanceTimeout)
	case !o.ConsumerProtocol && o.HeartbeatInterval+o.RevokeTimeout >= o.RebalanceTimeout:
		return fmt.Errorf("%w: HeartbeatInterval (%v) + RevokeTimeout (%v) must be below RebalanceTimeout (%v): "+
			"a member notices a rebalance at its next heartbeat, then revokes within RevokeTimeout, "+
			"and the coordinator waits RebalanceTimeout for it",
			ErrConfig, o.HeartbeatInterval, o.RevokeTimeout, o.RebalanceTimeout)
	case o.StartOffset != Earliest && o.StartOffset != Latest:
		return fmt.Errorf("%w: StartOffset must be Earliest or Latest, got %v", ErrConfig, o.StartOffset)
	case o.FetchMaxBytes < 1 || o.FetchMaxBytes > maxInt32:
		return fmt.Errorf("%w: FetchMaxBytes must be in 1..%d, got %d", ErrConfig, maxInt32, o.FetchMaxBytes)
	case o.FetchMaxWait < ms || o.FetchMaxWait > maxInt32*ms:
		// The request carries whole milliseconds: below 1ms it would be
		// 0, and a fetch loop would spin on an idle partition.
		return fmt.Errorf("%w: FetchMaxWait must be in 1ms..%v, got %v", ErrConfig, maxInt32*ms, o.FetchMaxWait)
	case o.RequestTimeout < ms:
		return fmt.Errorf("%w: RequestTimeout must be at least 1ms, got %v", ErrConfig, o.RequestTimeout)
	case o.RetryBackoff < ms:
		return fmt.Errorf("%w: RetryBackoff must be at least 1ms, got %v", ErrConfig, o.RetryBackoff)
	case o.ClientID == "":
		return fmt.Errorf("%w: ClientID is empty", ErrConfig)
	}
	return nil
}

// ValidateTarget checks the brokers, group and topics arguments of an
// adapter's NewConsumer, naming the bad one. Brokers may be empty only when
// brokersOptional (the client's own settings carry them).
func ValidateTarget(brokers []string, group string, topics []string, brokersOptional bool) error {
	if len(brokers) == 0 && !brokersOptional {
		return fmt.Errorf("%w: Brokers is empty", ErrConfig)
	}
	for i, b := range brokers {
		if b == "" {
			return fmt.Errorf("%w: Brokers[%d] is empty", ErrConfig, i)
		}
	}
	if group == "" {
		return fmt.Errorf("%w: Group is empty", ErrConfig)
	}
	if len(topics) == 0 {
		return fmt.Errorf("%w: Topics is empty", ErrConfig)
	}
	for i, t := range topics {
		if t == "" {
			return fmt.Errorf("%w: Topics[%d] is empty", ErrConfig, i)
		}
	}
	return nil
}

// WithMeterProvider sets the OpenTelemetry meter provider the consumer's
// metrics are created with (lag, commit point, oldest pending age, handler
// durations, commits; the list is in the README). Default
// otel.GetMeterProvider(), the global provider: a no-op until the program
// installs one with otel.SetMeterProvider. Not nil. The Java client's
// equivalent is its JMX metrics (metric.reporters).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return mark("MeterProvider", func(o *Options) { o.MeterProvider = mp })
}

// WithOrdering sets which handler calls of a partition may overlap:
// Unordered (default: any, the fastest), ByKey (calls for messages with
// equal key bytes never overlap and start in offset order; different keys
// run concurrently) or ByPartition (one call at a time per partition, in
// offset order). Commits are the same in every mode: the contiguous done
// prefix. (Parallel Consumer's ordering: UNORDERED, KEY, PARTITION.)
func WithOrdering(o Ordering) Option { return mark("Ordering", func(op *Options) { op.Ordering = o }) }

// WithKeylessOrdered makes, under ByKey, the messages without a key (nil or
// empty) one key, handled one at a time in offset order. Without it they
// are not ordered with each other, as Kafka's producers spread keyless
// records without order.
func WithKeylessOrdered() Option {
	return mark("KeylessOrdered", func(o *Options) { o.KeylessOrdered = true })
}

// WithRetry retries a failing message: MaxAttempts counts every handler
// call, the first included (1, the default, never retries; "3 retries" is
// MaxAttempts: 4), waiting Backoff before the second, doubling up to
// MaxBackoff, each wait jittered. The wait holds no worker; it holds only
// what the ordering requires (the message's key under ByKey, its partition
// under ByPartition, only itself under Unordered). After the last attempt
// the dead letter (WithDeadLetter, WithDeadLetterFunc) takes the message
// or, without one, the error policy applies. A handler returns
// Permanent(err) to skip the remaining attempts. A zero Backoff means
// 100ms and a zero MaxBackoff 10s (or Backoff if longer); other invalid
// values (MaxAttempts < 1, negative waits, MaxBackoff < Backoff) are
// refused by NewConsumer, naming the field. (Spring Kafka:
// DefaultErrorHandler with an ExponentialBackOff.)
func WithRetry(r Retry) Option {
	return mark("Retry", func(o *Options) {
		if r.Backoff == 0 {
			r.Backoff = DefaultBackoff
		}
		if r.MaxBackoff == 0 {
			r.MaxBackoff = max(DefaultMaxBackoff, r.Backoff)
		}
		o.Retry = r
	})
}

// WithBatch shapes the batches RunBatch hands its handler: at most maxSize
// messages per call, and a worker that holds fewer waits up to maxWait for
// more before it calls (0: it calls at once with what it has). What a batch
// may hold follows the ordering: Unordered, any messages, across
// partitions; ByKey, several messages of a key in offset order (the key is
// busy for the whole call); ByPartition, consecutive messages of one
// partition. Run ignores it. Defaults 100 and 10ms; maxSize at least 1,
// maxWait not negative, else NewConsumer refuses it naming WithBatch.
// (Parallel Consumer: batchSize; Spring Kafka: a batch listener with
// max.poll.records.)
func WithBatch(maxSize int, maxWait time.Duration) Option {
	return mark("Batch", func(o *Options) { o.BatchSize, o.BatchWait = maxSize, maxWait })
}

// WithDeadLetterFunc hands a message whose last attempt failed (see
// WithRetry) to f, with the handler's error; the message is acked only
// once f returned nil. An error (or panic) from f is retried with the Retry
// waits, never dropped: the commit point holds meanwhile. Default: none
// (after the last attempt the error policy applies); f not nil; not with
// WithDeadLetter. (Spring Kafka: a ConsumerRecordRecoverer.) M is the
// adapter's message type; genoptions writes each adapter's
// WithDeadLetterFunc over it.
func WithDeadLetterFunc[M any](f func(ctx context.Context, msg M, err error) error) Option {
	return mark("DeadLetter", func(o *Options) {
		if f == nil {
			o.Fail(fmt.Errorf("%w: WithDeadLetterFunc: nil function", ErrConfig))
			return
		}
		o.DeadLetter = func(ctx context.Context, msg any, err error, _ int) error { return f(ctx, msg.(M), err) }
	})
}

// WithDeadLetter produces a message whose last attempt failed (see
// WithRetry) to topic through the consumer's own client (same brokers,
// TLS, SASL and client id), with acks from all in-sync replicas
// (idempotent where the client supports it), and acks the message only
// once the broker acknowledged the dead-letter record. Key, value and
// headers are the original's, plus Spring Kafka's dead-letter headers, in
// Spring's encodings (kafka_dlt-original-topic,
// kafka_dlt-original-partition, kafka_dlt-original-offset,
// kafka_dlt-original-timestamp, kafka_dlt-original-timestamp-type,
// kafka_dlt-original-consumer-group, kafka_dlt-exception-message,
// kafka_dlt-exception-fqcn, kafka_dlt-exception-cause-fqcn), and
// inorder-attempts: the Header constants name them. The record goes to the
// original's partition number when topic has it, else to the key's
// partition (Java's murmur2). A produce that fails (topic missing, not
// authorized, unreachable) is logged and retried with the Retry waits: the
// commit point holds, nothing is skipped. topic must not be empty nor one
// of the consumed topics; not with WithDeadLetterFunc. (Spring Kafka:
// DeadLetterPublishingRecoverer.)
func WithDeadLetter(topic string) Option {
	return mark("DeadLetterTopic", func(o *Options) { o.DeadLetterTopic = topic })
}

// ValidateDeadLetter checks the dead-letter settings against the consumed
// topics, naming the problem.
func (o *Options) ValidateDeadLetter(topics []string) error {
	if !o.IsSet("DeadLetterTopic") {
		return nil
	}
	if o.DeadLetter != nil {
		return fmt.Errorf("%w: WithDeadLetter and WithDeadLetterFunc are both set", ErrConfig)
	}
	if o.DeadLetterTopic == "" {
		return fmt.Errorf("%w: DeadLetterTopic is empty (WithDeadLetter)", ErrConfig)
	}
	for _, t := range topics {
		if t == o.DeadLetterTopic {
			return fmt.Errorf("%w: DeadLetterTopic %q is one of the consumed topics", ErrConfig, t)
		}
	}
	return nil
}
