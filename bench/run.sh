#!/bin/sh
# Runs each benchmark given, one after the other (never in parallel: they
# measure the machine), and says which ran, skipped (77) or failed.
failed=0
summary=""
for program in "$@"; do
	name=$(basename "$program")
	printf '\n===== %s =====\n' "$name"
	"$program"
	rc=$?
	case $rc in
	0) verdict=ran ;;
	77) verdict=skipped ;;
	*) verdict="failed ($rc)"; failed=1 ;;
	esac
	summary="$summary$(printf '  %-26s %s' "$name" "$verdict")
"
done
printf '\n===== summary =====\n%s' "$summary"
exit $failed
