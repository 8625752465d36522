package engine

// This file holds the watchdogs a session runs on each commit tick, by
// sampling each partition (no cost per message): the stuck warning (a
// message holds the commit point) and the stall watchdog (the client does
// not fetch a partition that has more to fetch).

import "time"

// watch samples p at time now (a tick) and logs, and reports through
// SessionHooks.Stalled, the start and the end of stuck and stalled
// episodes, each once. Under tickMu.
func (s *Session[M]) watch(p *Part, now time.Time) {
	ws := p.wm.Stats() // also samples PartitionStats.Stuck
	log := s.e.log

	// Stuck: the commit point has not moved for StuckThreshold while
	// messages are pending. The oldest pending offset is the commit point.
	if ws.Pending == 0 || p.stuckSince.IsZero() || ws.Committable != p.stuckPoint {
		if p.stuckLogged {
			p.stuckLogged = false
			log.Info("inorder: partition commit point moving again", "topic", p.TP.Topic, "partition", p.TP.Partition,
				"commit_point", ws.Committable, "was_stuck_at", p.stuckPoint, "stuck_for", now.Sub(p.stuckSince))
		}
		p.stuckPoint, p.stuckSince = ws.Committable, time.Time{}
		if ws.Pending > 0 {
			p.stuckSince = now
		}
	} else if d := now.Sub(p.stuckSince); d >= s.e.cfg.StuckThreshold && !p.stuckLogged {
		p.stuckLogged = true
		log.Warn("inorder: partition stuck: the oldest pending message holds the commit point",
			"topic", p.TP.Topic, "partition", p.TP.Partition, "offset", ws.Committable,
			"pending", ws.Pending, "stuck_for", d)
	}

	// Stalled: not revoking, room in the window, the log end known and
	// above the high mark, and the high mark not moving for StallAfter.
	le := p.logEnd.Load()
	candidate := !p.Revoked() && le >= 0 && le > ws.High && ws.High-ws.Committable < ws.Window
	if !candidate || p.stallSince.IsZero() || ws.High != p.stallHigh {
		if p.stalled {
			p.stalled = false
			log.Info("inorder: partition fetched again", "topic", p.TP.Topic, "partition", p.TP.Partition,
				"high", ws.High, "log_end", le, "stalled_for", now.Sub(p.stallSince))
		}
		p.stallHigh, p.stallSince = ws.High, time.Time{}
		if candidate {
			p.stallSince = now
		}
		return
	}
	if d := now.Sub(p.stallSince); d >= s.stallAfter && !p.stalled {
		p.stalled = true
		log.Warn("inorder: partition stalled: not fetched although the log has more and the window has room",
			"topic", p.TP.Topic, "partition", p.TP.Partition, "state", p.State(), "high", ws.High,
			"log_end", le, "stalled_for", d)
		if s.hooks.Stalled != nil {
			s.hooks.Stalled(p)
		}
	}
}
