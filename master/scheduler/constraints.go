package scheduler

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Operators, spelled as Marathon spells them.
const (
	Unique  = "UNIQUE"
	Cluster = "CLUSTER"
	GroupBy = "GROUP_BY"
	Like    = "LIKE"
	Unlike  = "UNLIKE"
	MaxPer  = "MAX_PER"
	Is      = "IS"
)

// Validation messages. Where Marathon has one (SchedulingValidation.scala,
// SchedulingValidationMessages) the text is Marathon's, so that clients
// matching on it keep working; the others are ours.
const (
	msgFieldCount    = "Each constraint must have either 2 or 3 fields"
	msgMissingField  = "missing field for constraint declaration"
	msgUniqueValue   = "UNIQUE does not accept a value"
	msgGroupByValue  = "GROUP BY must define an integer value or else no value at all"
	msgMaxPerValue   = "MAX_PER requires an integer value"
	msgRegexpValue   = "LIKE and UNLIKE require a non-empty, regular expression value"
	msgIsText        = "IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)"
	msgIsValue       = "IS requires a non-empty value"
	msgOperator      = "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
	fmtInvalidRegexp = "'%s' is not a valid regular expression"
)

// isText is Marathon's MesosLiteralOrFloatValue: IS compares Mesos text and
// scalar attributes only, which keeps sets and ranges free for later.
var isText = regexp.MustCompile(`^[a-zA-Z0-9_/.-]*$`)

// Constraint is one parsed Marathon constraint. Operator is upper case;
// Value is empty when the constraint has none.
type Constraint struct {
	Field, Operator, Value string
}

// String renders the constraint as reasons show it: [hostname UNIQUE].
func (c Constraint) String() string {
	if c.Value == "" {
		return fmt.Sprintf("[%s %s]", c.Field, c.Operator)
	}
	return fmt.Sprintf("[%s %s %s]", c.Field, c.Operator, c.Value)
}

// FieldError is one validation failure, addressed the way Marathon's 422
// answers address it (Path "/constraints(0)").
type FieldError struct {
	Path    string
	Message string
}

// ParseConstraints validates Marathon constraints such as
// [["hostname","UNIQUE"], ["region","LIKE","eu-.*"]]. It returns either all
// of them parsed, or one FieldError per bad constraint.
func ParseConstraints(cs [][]string) ([]Constraint, []FieldError) {
	var out []Constraint
	var errs []FieldError
	for i, c := range cs {
		parsed, msg := parseConstraint(c)
		if msg != "" {
			errs = append(errs, FieldError{Path: fmt.Sprintf("/constraints(%d)", i), Message: msg})
			continue
		}
		out = append(out, parsed)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// validConstraints keeps the constraints that parse, for callers (SelectKills)
// that must still decide something when a stored app has a bad one.
func validConstraints(cs [][]string) []Constraint {
	var out []Constraint
	for _, c := range cs {
		if parsed, msg := parseConstraint(c); msg == "" {
			out = append(out, parsed)
		}
	}
	return out
}

// parseConstraint returns the constraint, or the message saying why it is bad.
func parseConstraint(c []string) (Constraint, string) {
	if len(c) < 2 || len(c) > 3 {
		return Constraint{}, msgFieldCount
	}
	if c[0] == "" {
		return Constraint{}, msgMissingField
	}
	// Marathon upper-cases the operator before looking it up.
	con := Constraint{Field: c[0], Operator: strings.ToUpper(c[1])}
	hasValue := len(c) == 3
	if hasValue {
		con.Value = c[2]
	}
	switch con.Operator {
	case Unique:
		// An empty third element is what some clients send for "no value";
		// Marathon before 1.5 accepted it, so we do too.
		if con.Value != "" {
			return Constraint{}, msgUniqueValue
		}
	case Cluster:
		// The value is optional: without one, the first task picks the value.
	case GroupBy:
		if hasValue {
			if _, err := strconv.Atoi(con.Value); err != nil {
				return Constraint{}, msgGroupByValue
			}
		}
	case MaxPer:
		if _, err := strconv.Atoi(con.Value); !hasValue || err != nil {
			return Constraint{}, msgMaxPerValue
		}
	case Like, Unlike:
		if con.Value == "" {
			return Constraint{}, msgRegexpValue
		}
		// Compile the bare value: wrapped in anchors, "a)(b" would compile.
		if _, err := regexp.Compile(con.Value); err != nil {
			return Constraint{}, fmt.Sprintf(fmtInvalidRegexp, con.Value)
		}
		if _, err := anchored(con.Value); err != nil {
			return Constraint{}, fmt.Sprintf(fmtInvalidRegexp, con.Value)
		}
	case Is:
		if con.Value == "" {
			return Constraint{}, msgIsValue
		}
		if !isText.MatchString(con.Value) {
			return Constraint{}, msgIsText
		}
	default:
		return Constraint{}, msgOperator
	}
	return con, ""
}

// anchored compiles a LIKE/UNLIKE pattern to match the whole value, as
// Java's String.matches does in Marathon: "rack-1" must not match "rack-10".
func anchored(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + pattern + `)$`)
}
