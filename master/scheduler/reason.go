package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// reject is why one agent cannot take an instance: a constraint (its index)
// with the way it refused, missing resources (rule -1, detail the
// resources it lacks, such as "cpus/mem") or its container policy
// (ruleContainerPolicy, detail the refusal).
type reject struct {
	rule   int
	detail string
}

// The rules of rejects that are not the app's constraints.
const (
	ruleResources       = -1
	ruleContainerPolicy = -2
)

// explain words why no agent of the total could take an instance, grouping
// agents refused for the same cause:
//
//	no agent satisfies constraint [hostname UNIQUE] (3 of 3 agents already used)
//	not enough cpus/mem (2 of 2 agents)
//	no agent fits: constraint [rack IS r1] (1 of 3 agents have another value); not enough mem (2 of 3 agents)
func explain(total int, rules []rule, rejects []reject) string {
	if total == 0 {
		return "no active agents"
	}
	counts := map[reject]int{}
	var causes []reject
	for _, r := range rejects {
		if counts[r] == 0 {
			causes = append(causes, r)
		}
		counts[r]++
	}
	// Constraints in the app's order first, then resources, then the
	// agents' container policies.
	slices.SortFunc(causes, func(a, b reject) int {
		ra, rb := a.rule, b.rule
		if ra < 0 {
			ra = len(rules) - ra
		}
		if rb < 0 {
			rb = len(rules) - rb
		}
		return cmp.Or(cmp.Compare(ra, rb), strings.Compare(a.detail, b.detail))
	})
	parts := make([]string, len(causes))
	for i, c := range causes {
		switch c.rule {
		case ruleResources:
			parts[i] = fmt.Sprintf("not enough %s (%d of %d agents)", c.detail, counts[c], total)
		case ruleContainerPolicy:
			parts[i] = fmt.Sprintf("%s (%d of %d agents)", c.detail, counts[c], total)
		default:
			parts[i] = fmt.Sprintf("constraint %s (%d of %d agents %s)", rules[c.rule].Constraint, counts[c], total, c.detail)
		}
	}
	if len(parts) == 1 {
		if causes[0].rule < 0 {
			return parts[0]
		}
		return "no agent satisfies " + parts[0]
	}
	return "no agent fits: " + strings.Join(parts, "; ")
}

// invalidReason explains why an app whose constraints do not parse cannot
// be placed at all. The API refuses such apps, so this only covers state
// written before validation existed.
func invalidReason(errs []FieldError) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Path + ": " + e.Message
	}
	return "invalid constraints: " + strings.Join(parts, "; ")
}
