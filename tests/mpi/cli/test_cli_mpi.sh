#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_cli_mpi.sh: backprop-train under mpiexec against a plain run. Unshuffled, 2 and 3 ranks
# (uneven shards: 240 training samples in batches of 32, the last of 16) print the single run's
# per-epoch losses, accuracies and validation figures (to a relative 2e-8: the logs carry 9 and
# 17 digits, and the ranks' sums differ from the single run's in the last bits) and its final
# test accuracy (exactly), once, not per rank; the model is saved once (the run's directory holds
# it and the log, nothing else), and --evaluate of it, plain and with 2 ranks, agrees with the
# training run's accuracy. One rank under mpiexec is a plain run to the bit; shuffled runs repeat
# for a given rank count; --optim lm under mpiexec is refused on every rank.
# Usage: test_cli_mpi.sh BACKPROP-TRAIN WORK-DIR MPIEXEC [MPIEXEC-ARGS...] (the args go before -np).
# Everything is written in a temporary directory under WORK-DIR (the build directory).
set -u
bin=$(realpath "$1") work=$2 mpiexec=$3  # the runs below change directory
shift 3
margs=("$@")
dir=$(mktemp -d "$work/cli_mpi.XXXXXX")
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$*"; }

# mpirun NP OUT ARGS...: backprop-train on NP ranks in the current directory, stdout to OUT.stdout,
# stderr to OUT.stderr; returns its exit status (124: the 120 s limit hit, a hang). LeakSanitizer
# (with the full unwinding Open MPI's libraries need, 2-3 s of CPU per rank at exit) checks the
# 2-rank training and evaluation runs, which take every MPI path of the program; leaks=0 spares
# the other runs.
leaks=1
mpirun() {
    local np=$1 out=$2 asan=${ASAN_OPTIONS:-}
    shift 2
    [ "$leaks" -eq 1 ] || asan="${asan:+$asan:}detect_leaks=0"
    ASAN_OPTIONS=$asan timeout 120 "$mpiexec" "${margs[@]}" -np "$np" "$bin" "$@" >"$out.stdout" 2>"$out.stderr"
}

# Three noisy classes in 4-D, label in column 0: 300 training rows, 101 test rows.
gen() {
    awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed);
        for (i = 0; i < n; i++) { c = i % 3;
            printf "%d,%.5f,%.5f,%.5f,%.5f\n", c, c + 1.5 * rand(), rand() - 0.7 * c, rand(), 2 * rand() - 1 } }'
}
gen 300 7 > "$dir/train.csv"
gen 101 8 > "$dir/test.csv"

# --val-split 0.2: 240 training rows (7 batches of 32 and one of 16), 60 validation rows.
common=(--train ../train.csv --test ../test.csv --layers 4-16-3 --double --batch 32 --epochs 3 --lr 0.01
        --val-split 0.2 --standardize)

# same_log A B: the logs' epochs, losses, accuracies and validation figures agree to 2e-8.
same_log() {
    awk -F, 'NR == FNR { if (FNR > 1) want[FNR] = $0; nw = FNR; next }
        FNR > 1 { split(want[FNR], w, ","); n = FNR
            if ($1 != w[1]) { printf "epoch %s vs %s\n", $1, w[1]; bad = 1 }
            split("2 3 4 7 8", cols, " ")
            for (k in cols) { j = cols[k]; a = $j + 0; b = w[j] + 0; d = a - b; if (d < 0) d = -d
                m = (a < 0 ? -a : a) > (b < 0 ? -b : b) ? (a < 0 ? -a : a) : (b < 0 ? -b : b)
                if (d > 2e-8 * m + 1e-15) { printf "epoch %s column %d: %s vs %s\n", $1, j, $j, w[j]; bad = 1 } } }
        END { if (n != nw) { printf "%d lines vs %d\n", n, nw; bad = 1 } exit bad }' "$1" "$2"
}

# The plain run.
mkdir "$dir/plain" && cd "$dir/plain" || exit 1
if "$bin" "${common[@]}" --no-shuffle --log log.csv --save model.bpm >out.stdout 2>out.stderr; then ok; else
    bad "plain run: exit $?"; cat out.stdout out.stderr; fi
want_acc=$(grep '^test accuracy: ' out.stdout)
want_best=$(grep '^best epoch: ' out.stdout | cut -d, -f1)
[ -n "$want_acc" ] && [ -n "$want_best" ] && [ "$(grep -c '^epoch ' out.stdout)" -eq 3 ] && ok ||
    bad "plain run's output: $(cat out.stdout)"

for np in 2 3; do
    mkdir "$dir/np$np" && cd "$dir/np$np" || exit 1
    leaks=$((np == 2))
    if mpirun "$np" out "${common[@]}" --no-shuffle --log log.csv --save model.bpm; then ok; else
        bad "-np $np: exit $?"; cat out.stdout out.stderr; continue; fi
    # Printed once: the data lines, the rank count, three epochs, the final lines.
    for line in '^data: 240 training samples' '^      60 validation samples' "^mpi: $np ranks, [0-9]+ threads? per rank\$" \
                '^model saved: model.bpm$' '^test accuracy: ' '^train time: ' '^best epoch: '; do
        c=$(grep -Ec -- "$line" out.stdout)
        [ "$c" -eq 1 ] && ok || bad "-np $np: '$line' printed $c times"
    done
    c=$(grep -c '^epoch ' out.stdout)
    [ "$c" -eq 3 ] && ok || bad "-np $np: $c epoch lines, want 3"
    # The single run's figures.
    if msg=$(same_log ../plain/log.csv log.csv); then ok; else bad "-np $np: log differs from the plain run's: $msg"; fi
    acc=$(grep '^test accuracy: ' out.stdout)
    [ "$acc" = "$want_acc" ] && ok || bad "-np $np: '$acc', the plain run '$want_acc'"
    best=$(grep '^best epoch: ' out.stdout | cut -d, -f1)
    [ "$best" = "$want_best" ] && ok || bad "-np $np: '$best', the plain run '$want_best'"
    # Rank 0 alone wrote files: the model and the log, nothing per rank.
    files=$(ls | grep -v '^out\.std' | tr '\n' ' ')
    [ "$files" = "log.csv model.bpm " ] && ok || bad "-np $np: the run's directory holds: $files"
    # The saved model evaluated by a plain run: the training run's accuracy.
    ev=$("$bin" --evaluate --load model.bpm --test ../test.csv 2>&1 | grep '^test accuracy: ')
    [ "$ev" = "$acc" ] && ok || bad "-np $np: --evaluate of the saved model: '$ev', training printed '$acc'"
done

# --evaluate with 2 ranks (51 and 50 test rows): the plain evaluation's loss (to 1e-12), accuracy
# and confusion matrix.
cd "$dir/plain" || exit 1
leaks=1
"$bin" --evaluate --load model.bpm --test ../test.csv >eval1.stdout 2>&1
if mpirun 2 eval2 --evaluate --load model.bpm --test ../test.csv; then ok; else bad "--evaluate -np 2: exit $?"; cat eval2.stderr; fi
l1=$(sed -n 's/^test loss: //p' eval1.stdout) l2=$(sed -n 's/^test loss: //p' eval2.stdout)
awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-12 * a) }' && ok ||
    bad "--evaluate: test loss $l2 with 2 ranks, $l1 plain"
if diff <(grep -v -e '^test loss' -e '^mpi: ' eval1.stdout) <(grep -v -e '^test loss' -e '^mpi: ' eval2.stdout) >/dev/null
then ok; else bad "--evaluate: 2 ranks print"; cat eval2.stdout; echo "plain prints"; cat eval1.stdout; fi
c=$(grep -c '^test accuracy: ' eval2.stdout)
[ "$c" -eq 1 ] && ok || bad "--evaluate -np 2: accuracy printed $c times"
leaks=0

# One rank under mpiexec: a plain run, to the bit (the same log columns, no "mpi:" line).
mkdir "$dir/np1" && cd "$dir/np1" || exit 1
if mpirun 1 out "${common[@]}" --no-shuffle --log log.csv; then ok; else bad "-np 1: exit $?"; cat out.stderr; fi
if [ "$(cut -d, -f1-4,7,8 log.csv)" = "$(cut -d, -f1-4,7,8 ../plain/log.csv)" ] && ! grep -q '^mpi: ' out.stdout; then ok
else bad "-np 1 differs from the plain run"; cat log.csv out.stdout; fi

# Shuffled (each rank shuffles its shard): two runs on 2 ranks give the same bits.
mkdir "$dir/shuffle" && cd "$dir/shuffle" || exit 1
mpirun 2 a "${common[@]}" --log a.csv && mpirun 2 b "${common[@]}" --log b.csv && ok || bad "shuffled -np 2: exit $?"
if [ -s a.csv ] && [ "$(cut -d, -f1-4,7,8 a.csv)" = "$(cut -d, -f1-4,7,8 b.csv)" ]; then ok
else bad "shuffled -np 2 runs differ"; cat a.csv b.csv; fi

# --optim lm is not data-parallel: a usage error (exit 2) on every rank, before anything is read.
cd "$dir" || exit 1
mpirun 2 lm --train train.csv --layers 4-8-3 --loss mse --optim lm --epochs 2 --log lm.csv
rc=$?
if [ "$rc" -eq 2 ] && [ "$(grep -c 'rank [01]: backprop-train: --optim lm .* not data-parallel' lm.stderr)" -eq 2 ] &&
   [ ! -e lm.csv ] && [ ! -s lm.stdout ]; then ok
else bad "--optim lm under mpiexec: exit $rc"; cat lm.stdout lm.stderr; fi

echo "cli_mpi: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
