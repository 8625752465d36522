package kafkago

// This file reports kafka-go's view of the mistakes a person must hear
// about to the Run's engine.Watch: join failures (connection errors among
// them) and subscribed topics that do not exist.

import (
	"context"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// joinFailed reports a failed join of the group: a connection error to the
// Watch (one Warn once no broker answered for RequestTimeout, then
// quietly), any other error at Warn.
func (g *groupRun) joinFailed(err error) {
	if engine.IsConnError(err) {
		g.w.ConnFailed(err)
		return
	}
	g.w.JoinFailed(err)
	g.c.opts.Logger.Warn("kafkago: joining group failed, retrying", "group", g.c.group, "error", err)
}

// whyJoinFailed returns err, or, when SASL or TLS is set, the error of a
// connection to a broker through kafka-go's Dialer if that one says more:
// kafka-go's Transport reports refused SASL credentials as a connection
// closed (unexpected EOF), its Dialer as SASLAuthenticationFailed.
func (g *groupRun) whyJoinFailed(ctx context.Context, err error) error {
	if (g.c.cfg.sasl == nil && g.c.cfg.tls == nil) || clientFailure(err) != "" {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.c.opts.RequestTimeout)
	defer cancel()
	for _, b := range g.c.brokers {
		conn, derr := g.dialer.DialContext(ctx, "tcp", b)
		if derr == nil {
			_ = conn.Close()
			continue
		}
		if clientFailure(derr) != "" {
			return derr
		}
	}
	return err
}

// missingTopics returns the subscribed topics the cluster does not have.
func (g *groupRun) missingTopics(ctx context.Context) ([]string, error) {
	_, counts, err := g.readPartitions(ctx, g.c.topics)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range g.c.topics {
		if counts[t] == 0 {
			out = append(out, t)
		}
	}
	return out, nil
}
