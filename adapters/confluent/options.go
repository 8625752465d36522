package confluent

// This file holds the Consumer's options: the ones every adapter shares
// (defined in the engine; options_shared.go, which genoptions writes,
// exports them with their docs), librdkafka's own (WithConfigMap), the
// settings a ConfigMap may not change, and how the options map onto
// librdkafka's configuration.

//go:generate go run ../../internal/cmd/genoptions -adapter confluent

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Option configures a Consumer. The options of options_shared.go are shared
// by every adapter of this module (same names, meanings, defaults and
// validation);
// each documents its default and the Java setting it corresponds to, which
// for librdkafka has the same name unless said otherwise.
type Option = engine.Option

// config is librdkafka's own settings (engine.Options.Adapter).
type config struct {
	extra      kafka.ConfigMap
	instanceID string // WithInstanceID; "" for a dynamic member
	protocol   GroupProtocol
	txnID      *string // WithTransactionalID (txn.go)

	// Tests only (export_test.go).
	onAssign func(protocol string, tps []TopicPartition)
	onRevoke func(tps []TopicPartition, lost bool)
	// onRevokeStart is called as a revoke starts, before its drain and
	// commit.
	onRevokeStart func(tps []TopicPartition, lost bool)
	onCommit      func(offs []engine.Offset, errs []error)
	onPause       func(tp TopicPartition, paused bool)
	// onPoll is called on the poll goroutine after every Poll, with the
	// librdkafka handle.
	onPoll func(kc *kafka.Consumer)
	// onOffer is called on the poll goroutine before a partition's batch
	// is offered to the engine, with its size in messages and bytes.
	onOffer func(tp TopicPartition, msgs, bytes int)
	// onRead is called before every read at an assignment ("committed" for
	// the committed offsets, "watermarks" for the log starts or ends); an
	// error it returns is the read's.
	onRead   func(what string, tp TopicPartition) error
	onReseek func(tp TopicPartition) // a stalled partition is reseeked
	// onCommitted sees (and may change) the committed offsets read at an
	// assignment, before they are used.
	onCommitted func(ktps []kafka.TopicPartition)
	// onCall is called around every librdkafka call that can block for a
	// while: call "commit" (Commit, CommitOffsets) and "deadletter" (a
	// dead-letter Produce) with enter true before it and false after it
	// returned; "close" and "deadletter-close" (enter true) just before the
	// consumer, or the dead-letter producers, are destroyed.
	onCall func(call string, enter bool)
}

// own returns the librdkafka settings of o, or records that option is not
// one of this package's.
func own(o *engine.Options, option string) *config { return engine.Own[config](o, "confluent", option) }

// WithConfigMap passes librdkafka settings through (security, client.id,
// partition.assignment.strategy, ...). They are applied after the other
// options and override them. NewConsumer refuses, with an error naming the
// setting, those that would break the guarantees or that the Consumer owns:
// enable.auto.offset.store (must stay false: offsets are stored only when
// handled), enable.auto.commit and auto.commit.interval.ms (commits follow
// the handlers; see WithCommitInterval), enable.partition.eof (must stay
// true: it moves the commit point over trailing transaction markers),
// go.application.rebalance.enable and go.events.channel.enable (the
// Consumer handles rebalances in its own callback and polls), and group.id
// (the group argument). bootstrap.servers may replace the brokers argument.
// Default: none (librdkafka's defaults, but for what the Consumer and the
// shared options set). Given several times, the maps are merged.
func WithConfigMap(m kafka.ConfigMap) Option {
	return func(o *engine.Options) {
		c := own(o, "WithConfigMap")
		if c.extra == nil {
			c.extra = kafka.ConfigMap{}
		}
		maps.Copy(c.extra, m)
	}
}

// WithInstanceID makes the member static (KIP-345) under id: a member that
// restarts with the same id within the session timeout gets its partitions
// back without a rebalance (on Kafka; the embedded test broker rebalances
// when the rejoin's metadata differs, see the README). Run's end (its
// context, Close, a failure) drains and commits every partition within
// RevokeTimeout and does not leave the group (librdkafka's close sends no
// LeaveGroup for a static member): the partitions wait, unfetched, for the
// member's return or its session timeout (WithSessionTimeout), after which
// the group rebalances them. Ids must be unique in the group: a second
// member joining with this id fences this one (a fatal error in
// librdkafka), whose Run then ends with an error wrapping ErrFenced and
// naming id, its partitions dropped without a commit. Default: none (a
// dynamic member, which leaves the group at the end of Run). An empty id is
// refused by NewConsumer. Corresponds to group.instance.id, which
// WithConfigMap refuses.
func WithInstanceID(id string) Option {
	return func(o *engine.Options) {
		c := own(o, "WithInstanceID")
		if id == "" {
			o.Fail(fmt.Errorf("%w: InstanceID is empty (leave WithInstanceID out for a dynamic member)", ErrInvalidConfig))
			return
		}
		c.instanceID = id
	}
}

// GroupProtocol is the consumer group protocol a member speaks
// (WithGroupProtocol).
type GroupProtocol int

const (
	// ClassicProtocol is the classic protocol (JoinGroup, SyncGroup,
	// Heartbeat): the group leader assigns with partition.assignment.strategy,
	// and a rebalance stops the group (eager) or the partitions that move
	// (cooperative-sticky).
	ClassicProtocol GroupProtocol = iota
	// ConsumerProtocol is KIP-848's consumer protocol
	// (ConsumerGroupHeartbeat, Kafka 4.0+): the coordinator assigns
	// (group.remote.assignor) and each member revokes and receives only the
	// partitions that move, without stopping the others.
	ConsumerProtocol
)

// WithGroupProtocol sets the consumer group protocol: ClassicProtocol
// (default) or ConsumerProtocol (librdkafka's group.protocol=consumer; in
// the librdkafka bundled with confluent-kafka-go v2.11.1). Under
// ConsumerProtocol the coordinator owns the session and the assignment, so
// NewConsumer refuses, naming them, WithSessionTimeout,
// WithHeartbeatInterval and the ConfigMap's session.timeout.ms,
// heartbeat.interval.ms and partition.assignment.strategy (the broker's
// group.consumer.* settings apply; group.remote.assignor may be set in the
// ConfigMap). Rebalances are incremental: a revoke drains and commits only
// the partitions that move. A commit refused with STALE_MEMBER_EPOCH (the
// member's epoch moved on) is retried like one refused with
// ILLEGAL_GENERATION. Corresponds to the Java group.protocol.
func WithGroupProtocol(p GroupProtocol) Option {
	return func(o *engine.Options) {
		c := own(o, "WithGroupProtocol")
		if p != ClassicProtocol && p != ConsumerProtocol {
			o.Fail(fmt.Errorf("%w: GroupProtocol %d is neither ClassicProtocol nor ConsumerProtocol", ErrInvalidConfig, p))
			return
		}
		c.protocol = p
	}
}

// consumerProtocolRefuses are the settings the consumer protocol leaves
// to the coordinator: a shared option, or a ConfigMap key.
var consumerProtocolRefuses = []struct{ option, key string }{
	{"SessionTimeout", "session.timeout.ms"},
	{"HeartbeatInterval", "heartbeat.interval.ms"},
	{"", "partition.assignment.strategy"},
}

// checkGroupProtocol refuses, naming it, what cfg's protocol forbids.
func checkGroupProtocol(o *engine.Options, cfg *config) error {
	if cfg.protocol != ConsumerProtocol {
		return nil
	}
	for _, r := range consumerProtocolRefuses {
		if r.option != "" && o.IsSet(r.option) {
			return fmt.Errorf("%w: option %s may not be set with ConsumerProtocol: the group coordinator owns it", ErrInvalidConfig, r.option)
		}
		if _, ok := cfg.extra[r.key]; ok {
			return fmt.Errorf("%w: librdkafka setting %s may not be set with ConsumerProtocol: the group coordinator owns it", ErrInvalidConfig, r.key)
		}
	}
	return nil
}

// forced are the settings the Consumer sets and a ConfigMap may only repeat
// with the same value.
var forced = map[string]struct {
	value string
	why   string
}{
	"enable.auto.offset.store":        {"false", "offsets are stored only once every message below them is handled"},
	"enable.auto.commit":              {"false", "commits follow the handlers every CommitInterval (use WithCommitInterval), not the poll loop"},
	"enable.partition.eof":            {"true", "partition EOF moves the commit point over trailing transaction markers"},
	"go.application.rebalance.enable": {"false", "the Consumer handles rebalances in its own rebalance callback"},
	"go.events.channel.enable":        {"false", "the Consumer polls; the events channel would bypass its rebalance handling"},
}

// refused are settings a ConfigMap may not carry at all.
var refused = map[string]string{
	"auto.commit.interval.ms": "commits are the Consumer's; use WithCommitInterval",
	"group.id":                "use the group argument of NewConsumer",
	"go.logs.channel.enable":  "librdkafka logs go to WithLogger",
	"go.logs.channel":         "librdkafka logs go to WithLogger",
	"group.instance.id":       "use WithInstanceID (the Consumer handles its fencing)",
	"group.protocol":          "use WithGroupProtocol",
}

// shared are the librdkafka settings a shared option sets: a ConfigMap may
// set them instead of the option, not as well.
var shared = map[string]string{
	"session.timeout.ms":        "SessionTimeout",
	"max.poll.interval.ms":      "RebalanceTimeout",
	"heartbeat.interval.ms":     "HeartbeatInterval",
	"isolation.level":           "ReadCommitted",
	"auto.offset.reset":         "StartOffset",
	"max.partition.fetch.bytes": "FetchMaxBytes",
	"fetch.wait.max.ms":         "FetchMaxWait",
	"retry.backoff.ms":          "RetryBackoff",
	"client.id":                 "ClientID",
	"socket.timeout.ms":         "RequestTimeout",
}

// WithTransactionalID makes the Consumer exactly-once (consume → transform
// → produce): the messages a handler gives Produce are written, with the
// offsets and commit metadata that mark its message done, in one
// transaction per commit (the commit interval defaults to 100ms in this
// mode; WithCommitInterval changes it). id is the transactional.id of the
// Consumer's producer: unique per consumer process and stable across its
// restarts (a pod name), so that a restart fences the previous process and
// aborts its open transaction. Default: none (at-least-once). A
// dead-lettered message's dead-letter record (WithDeadLetter) goes in the
// transaction that commits the message as done; a WithDeadLetterFunc
// function may call Produce with its context likewise. Refused when empty;
// not available with RunBatch yet. See Produce.
func WithTransactionalID(id string) Option {
	return func(o *engine.Options) { own(o, "WithTransactionalID").txnID = &id }
}

// newOptions applies and validates the options and returns them with the
// librdkafka configuration.
func newOptions(brokers []string, group string, topics []string, opts []Option) (*engine.Options, *config, kafka.ConfigMap, error) {
	cfg := &config{}
	o, err := engine.NewOptions(cfg, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	o.ConsumerProtocol = cfg.protocol == ConsumerProtocol
	if err := checkGroupProtocol(o, cfg); err != nil {
		return nil, nil, nil, err
	}
	_, extraBootstrap := cfg.extra["bootstrap.servers"]
	if len(brokers) > 0 && extraBootstrap {
		return nil, nil, nil, fmt.Errorf("%w: Brokers and the ConfigMap's bootstrap.servers are both set", ErrInvalidConfig)
	}
	if err := engine.ValidateTarget(brokers, group, topics, extraBootstrap); err != nil {
		if len(brokers) == 0 {
			err = fmt.Errorf("%w (and no bootstrap.servers in the ConfigMap)", err)
		}
		return nil, nil, nil, err
	}
	// A ConfigMap setting that a shared option also sets takes the
	// option's place (read back into o, so it is validated alike).
	var fromMap []string
	for _, k := range slices.Sorted(maps.Keys(cfg.extra)) {
		name, ok := shared[k]
		if !ok {
			continue
		}
		if o.IsSet(name) {
			return nil, nil, nil, fmt.Errorf("%w: librdkafka setting %s and option %s are both set", ErrInvalidConfig, k, name)
		}
		if err := fromConfigMap(o, k, cfg.extra[k]); err != nil {
			return nil, nil, nil, err
		}
		fromMap = append(fromMap, fmt.Sprintf("%s from %s", name, k))
	}
	err = o.Validate()
	if err == nil {
		err = o.ValidateDeadLetter(topics)
	}
	if err == nil {
		err = o.Transactional(cfg.txnID)
	}
	if err == nil && o.RebalanceTimeout < o.SessionTimeout && cfg.protocol == ClassicProtocol {
		err = fmt.Errorf("%w: RebalanceTimeout (%v, max.poll.interval.ms) must be at least SessionTimeout (%v, session.timeout.ms): librdkafka requires it",
			ErrInvalidConfig, o.RebalanceTimeout, o.SessionTimeout)
	}
	if err != nil {
		if len(fromMap) > 0 {
			err = fmt.Errorf("%w (librdkafka settings used: %s)", err, strings.Join(fromMap, ", "))
		}
		return nil, nil, nil, err
	}

	ms := func(d time.Duration) int { return int(d / time.Millisecond) }
	cm := kafka.ConfigMap{
		"group.id":                  group,
		"enable.auto.offset.store":  false,
		"enable.auto.commit":        false,
		"enable.partition.eof":      true,
		"session.timeout.ms":        ms(o.SessionTimeout),
		"max.poll.interval.ms":      ms(o.RebalanceTimeout),
		"heartbeat.interval.ms":     ms(o.HeartbeatInterval),
		"isolation.level":           "read_committed",
		"auto.offset.reset":         "earliest",
		"max.partition.fetch.bytes": o.FetchMaxBytes,
		"fetch.wait.max.ms":         ms(o.FetchMaxWait),
		"retry.backoff.ms":          ms(o.RetryBackoff),
		"retry.backoff.max.ms":      ms(max(o.RetryBackoff, engine.DefaultMaxRetryBackoff)),
		"client.id":                 o.ClientID,
		"socket.timeout.ms":         socketTimeoutMs(o),
		// librdkafka postpones a partition's next fetch by this much once
		// its local queue is over queued.min.messages or
		// queued.max.messages.kbytes; its default, 1s, stalls a consumer
		// that drains the queue faster than that (a backlog). A
		// ConfigMap may set it.
		"fetch.queue.backoff.ms": fetchQueueBackoffMs,
		// librdkafka's own buffer, on top of MaxBufferedBytes (the engine's):
		// its local queue at a quarter of the budget (librdkafka's default
		// is 64 MiB whatever the budget), and a fetch response no larger.
		"queued.max.messages.kbytes": max(1, min(2097151, int(o.MaxBufferedBytes/4/1024))),
		"fetch.max.bytes":            max(o.FetchMaxBytes, 1_000_000, min(50<<20, int(o.MaxBufferedBytes/4))), // librdkafka: at least message.max.bytes
	}
	if len(brokers) > 0 {
		cm["bootstrap.servers"] = strings.Join(brokers, ",")
	}
	if !o.ReadCommitted {
		cm["isolation.level"] = "read_uncommitted"
	}
	if o.StartOffset == Latest {
		cm["auto.offset.reset"] = "latest"
	}
	if cfg.instanceID != "" {
		cm["group.instance.id"] = cfg.instanceID
	}
	if cfg.protocol == ConsumerProtocol {
		cm["group.protocol"] = "consumer"
		delete(cm, "session.timeout.ms")
		delete(cm, "heartbeat.interval.ms")
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.extra)) {
		v := cfg.extra[k]
		if _, ok := shared[k]; ok {
			continue // read into o above
		}
		if why, bad := refused[k]; bad {
			return nil, nil, nil, fmt.Errorf("%w: librdkafka setting %s may not be set: %s", ErrInvalidConfig, k, why)
		}
		if f, ok := forced[k]; ok {
			if b, err := asBool(v); err != nil || strconv.FormatBool(b) != f.value {
				return nil, nil, nil, fmt.Errorf("%w: librdkafka setting %s=%v breaks the guarantees, it must be %s: %s",
					ErrInvalidConfig, k, v, f.value, f.why)
			}
			continue
		}
		cm[k] = v
	}
	return o, cfg, cm, nil
}

// fetchQueueBackoffMs is the Consumer's fetch.queue.backoff.ms (see
// newOptions).
const fetchQueueBackoffMs = 50

// socketTimeoutMs is the Consumer's socket.timeout.ms, librdkafka's timeout
// of every request (a commit's OffsetCommit included; a fetch gets
// fetch.wait.max.ms on top): RequestTimeout, raised to FetchMaxWait + 1s
// (below that, librdkafka warns, a request queued behind a fetch on the
// same connection times out) and capped at librdkafka's maximum, 300s.
func socketTimeoutMs(o *engine.Options) int {
	d := min(max(o.RequestTimeout, o.FetchMaxWait+time.Second), 300*time.Second)
	return int(d / time.Millisecond)
}

// fromConfigMap sets the shared option that librdkafka setting k
// corresponds to from its value v.
func fromConfigMap(o *engine.Options, k string, v kafka.ConfigValue) error {
	switch k {
	case "isolation.level":
		switch fmt.Sprint(v) {
		case "read_committed":
			o.ReadCommitted = true
		case "read_uncommitted":
			o.ReadCommitted = false
		default:
			return fmt.Errorf("%w: librdkafka setting isolation.level=%v is not read_committed or read_uncommitted", ErrInvalidConfig, v)
		}
	case "auto.offset.reset":
		switch fmt.Sprint(v) {
		case "smallest", "earliest", "beginning":
			o.StartOffset = Earliest
		case "largest", "latest", "end":
			o.StartOffset = Latest
		default:
			return fmt.Errorf("%w: librdkafka setting auto.offset.reset=%v is not supported, use earliest or latest", ErrInvalidConfig, v)
		}
	case "client.id":
		o.ClientID = fmt.Sprint(v)
	case "max.partition.fetch.bytes":
		n, err := asInt(v)
		if err != nil {
			return fmt.Errorf("%w: librdkafka setting %s=%v is not a number", ErrInvalidConfig, k, v)
		}
		o.FetchMaxBytes = int(n)
	default:
		d, err := durationMs(v)
		if err != nil {
			return fmt.Errorf("%w: librdkafka setting %s=%v must be a positive number of milliseconds", ErrInvalidConfig, k, v)
		}
		switch k {
		case "session.timeout.ms":
			o.SessionTimeout = d
		case "max.poll.interval.ms":
			o.RebalanceTimeout = d
		case "heartbeat.interval.ms":
			o.HeartbeatInterval = d
		case "fetch.wait.max.ms":
			o.FetchMaxWait = d
		case "retry.backoff.ms":
			o.RetryBackoff = d
		case "socket.timeout.ms":
			o.RequestTimeout = d
		}
	}
	return nil
}

func asBool(v kafka.ConfigValue) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return strconv.ParseBool(x)
	}
	return false, fmt.Errorf("not a bool: %v", v)
}

func asInt(v kafka.ConfigValue) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("unsupported type %T", v)
}

func durationMs(v kafka.ConfigValue) (time.Duration, error) {
	n, err := asInt(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive number of milliseconds: %v", v)
	}
	return time.Duration(n) * time.Millisecond, nil
}
