# tests/e2e/lib.sh - checks the end-to-end update tests share (sourced after tests/cli/lib.sh).

# check_update_report LABEL RUN_DIR N: RUN_DIR/report.json has M2, muscle and choice for its
# task, each with accuracy over N test instances and an NFR inside its bootstrap interval
# (printed as # lines), and every prediction file in RUN_DIR/preds has the N instances.
check_update_report() {
  local label="$1" run="$2" n="$3"
  check "$label: report.json: M2 and both methods with accuracy and NFR on the $n test instances" /usr/bin/python3 -c "
import json; r = json.load(open('$run/report.json')); t = r['tasks'][0]
names = [m['name'] for m in t['models']]; assert names == ['M2', 'muscle', 'choice'], names
for m in t['models']:
    s = m['stats']; print('# $label %-7s acc old %.3f new %.3f NFR %.3f [%.3f, %.3f]' % (m['name'], s['acc_old']['value'], s['acc_new']['value'], s['nfr']['value'], s['nfr']['lo'], s['nfr']['hi']))
    assert s['acc_old']['den'] == $n and 0 <= s['nfr']['lo'] <= s['nfr']['value'] <= s['nfr']['hi'] <= 1"
  check "$label: every prediction file has the $n instances" /usr/bin/python3 -c "
import json, glob
fs = sorted(glob.glob('$run/preds/*.jsonl')); assert len(fs) >= 4, fs
for f in fs:
    L = [json.loads(l) for l in open(f)]; assert len(L) == $n and all(isinstance(x['correct'], bool) for x in L), f"
}
