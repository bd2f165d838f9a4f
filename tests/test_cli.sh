#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_cli.sh: backprop-train end to end: argument errors, training on CSV and generated
# data, --save/--load, --log, a corrupt model, --opt=value, --version.
# Usage: test_cli.sh PATH/TO/backprop-train [VERSION]
set -u
version=${2:-}
. "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh" "$1"

# Two well-separated classes in 2-D, label in column 0, with a header line.
awk 'BEGIN { srand(3); print "label,x,y";
             for (i = 0; i < 400; i++) { c = i % 2; printf "%d,%.4f,%.4f\n", c, (c ? 1 : -1) + rand() - 0.5, rand() - 0.5 } }' \
    > "$dir/two.csv"

expect help 0 '--layers' -- --help
expect help-exit-early 0 '--layers' -- --help --bogus
if [ -n "$version" ]; then
    expect version 0 "^backprop-train ${version//./\\.}\$" -- --version
fi
# '--opt=value' as '--opt value': the same values reach the same checks and messages.
expect equals-value 2 "--epochs: 'ten' is not a whole number" -- --synthetic --epochs=ten
expect equals-lr 2 '^backprop-train: --lr: -2 is not > 0$' -- --synthetic --epochs=1 --lr=-2
expect equals-empty 2 "--epochs: '' is not a whole number" -- --synthetic --epochs=
expect flag-with-value 2 '--quiet takes no value' -- --synthetic --quiet=yes
expect short-unknown 2 "unknown option '-x'" -- --synthetic -x
expect stray-argument 2 "unexpected argument 'extra'" -- --synthetic extra
# Options that do not go together: usage errors (2), found before anything is read or written.
expect predict-no-load 2 '--predict needs a model: add --load FILE' -- --predict "$dir/two.csv"
expect evaluate-no-load 2 '--evaluate needs a model: add --load FILE' -- --evaluate --test "$dir/two.csv"
expect evaluate-no-test 2 '--evaluate needs labelled data: add --test SPEC' -- --evaluate --load "$dir/m.bpm"
expect predict-and-evaluate 2 '--predict and --evaluate are separate runs' -- --predict "$dir/two.csv" --evaluate \
    --load "$dir/m.bpm" --test "$dir/two.csv"
expect predict-train 2 '--predict runs a saved model and trains nothing: drop --train' -- --predict "$dir/two.csv" \
    --load "$dir/m.bpm" --train "$dir/two.csv"
expect evaluate-save 2 '--evaluate runs a saved model and trains nothing: drop --save' -- --evaluate \
    --load "$dir/m.bpm" --test "$dir/two.csv" --save "$dir/x.bpm"
expect out-without-predict 2 '--out is where --predict writes' -- --synthetic --out "$dir/p.csv"
expect val-and-split 2 '--val and --val-split both give a validation set: give one of them' -- --train "$dir/two.csv" \
    --val "$dir/two.csv" --val-split 0.2
expect early-stop-no-val 2 '--early-stop needs a validation set: add --val SPEC or --val-split F' -- \
    --train "$dir/two.csv" --early-stop 3
expect bad-val-split 2 "--val-split: '1' is not a fraction F with 0 < F < 1" -- --synthetic --val-split 1
expect bad-early-stop 2 "--early-stop: '0' is not a whole number >= 1" -- --synthetic --val-split 0.1 --early-stop 0
expect resume-no-load 2 '--resume goes on with a saved run: add --load FILE' -- --synthetic --resume
expect standardize-load 2 '--standardize fits a new model' -- --synthetic --standardize --load "$dir/m.bpm"
expect newton-val 2 '--newton fits in one go, without epochs: drop --val-split' -- --synthetic --logreg --newton \
    --val-split 0.1
expect unknown-option 2 "unknown option '--bogus'" -- --bogus
expect missing-value 2 '--epochs needs a value' -- --synthetic --epochs
expect bad-number 2 "--epochs: 'ten' is not a whole number" -- --synthetic --epochs ten
expect bad-layers 2 '--layers' -- --synthetic --layers 784-x-10
expect one-width 2 'at least inputs and outputs' -- --synthetic --layers 784
expect bad-act 2 "unknown activation 'swish'" -- --synthetic --act swish
expect bad-optim 2 "unknown optimizer 'lbfgs'" -- --synthetic --optim lbfgs
expect no-data 2 'no training data' --
expect newton-alone 2 '--newton fits a logistic regression' -- --synthetic --newton
expect micro-too-big 2 'larger than --batch' -- --synthetic --batch 8 --micro-batch 16
expect missing-file 1 'cannot open' -- --train "$dir/none.csv"
expect idx-missing 1 'cannot open' -- --train "$dir/a.idx,$dir/b.idx"
expect width-mismatch 1 '--layers starts with 784 inputs but the data has 2 features' -- --train "$dir/two.csv"
# Usage errors are found before any data is read or file written: exit 2, the option named, and
# --log not even created.
expect bad-lr 2 '^backprop-train: --lr: -1 is not > 0$' -- --synthetic --epochs 1 --lr -1 --log "$dir/nolog.csv"
expect zero-lr 2 '--lr: 0 is not > 0' -- --synthetic --epochs 1 --lr 0
expect bad-beta1 2 '--beta1: 1 is not in \[0, 1\)' -- --synthetic --epochs 1 --beta1 1
expect bad-momentum 2 '--momentum: 1.5 is not in \[0, 1\)' -- --synthetic --optim momentum --momentum 1.5
expect bad-gamma 2 '--gamma: 2 is not in \(0, 1\]' -- --synthetic --schedule step --gamma 2
expect bad-save-dir 2 "--save: cannot write into the directory '$dir/no/such'" -- --synthetic --epochs 1 \
    --save "$dir/no/such/m.bpm"
expect newton-too-big 2 '--newton: the model has 7850 parameters, more than 4096' -- --synthetic --logreg --newton \
    --log "$dir/nolog.csv"
if [ ! -e "$dir/nolog.csv" ]; then ok; else bad "usage errors: --log was written"; fi
expect negative-seed 2 "--seed: '-5' is not a whole number" -- --synthetic --seed -5
expect zero-width 2 "--layers: width 0 in '784-0-10' is not in \[1, 16777216\]" -- --synthetic --layers 784-0-10
# Divergence: the loss turns NaN, training stops there, nothing is saved, exit 1 naming the epoch.
expect diverged 1 'training diverged in epoch 1: its loss is not finite; the model is not saved' -- --synthetic \
    --layers 784-16-10 --epochs 3 --optim sgd --lr 1e30 --schedule constant --save "$dir/nan.bpm"
if [ ! -e "$dir/nan.bpm" ]; then ok; else bad "diverged: a model was saved"; fi

# Training: CSV, end lines, a log with one row per epoch.
expect csv-train 0 'test accuracy: (0\.9[0-9]*|1\.0000)' -- --train "$dir/two.csv" --test "$dir/two.csv" \
    --layers 2-8-2 --epochs 5 --batch 16 --lr 0.01 --log "$dir/log.csv"
rows=$(wc -l < "$dir/log.csv" 2>/dev/null || echo 0)
if [ "$rows" -eq 6 ] && head -1 "$dir/log.csv" | grep -q '^epoch,loss,train,test'; then ok; else bad "log: $rows lines"; fi
out=$("$bin" --train "$dir/two.csv" --test "$dir/two.csv" --layers 2-4-2 --epochs 2 --quiet 2>&1)
if [ "$(printf '%s\n' "$out" | tail -2 | sed -n '1s/^test accuracy: [0-9.]* ([0-9]*\/400)$/ok/p;2s/^train time: [0-9.]* s$/ok/p' | wc -l)" -eq 2 ]; then
    ok; else bad "end lines:"; printf '%s\n' "$out"; fi
expect logreg-newton 0 'newton: [0-9]+ iterations' -- --train "$dir/two.csv" --test "$dir/two.csv" --logreg --newton
# Newton's line reports the training loss it reached, not "nan" and "0 samples/s".
expect newton-line 0 '^newton  loss 0\.[0-9]+  train acc' -- --train "$dir/two.csv" --logreg --newton
# Test labels the model cannot predict are refused, not counted as wrong.
awk 'NR == 1 { print; next } { sub(/^[01]/, "5"); print }' "$dir/two.csv" > "$dir/five.csv"
expect test-label-range 1 'the test set has labels up to 5 but the model only 2 outputs' -- --train "$dir/two.csv" \
    --test "$dir/five.csv" --layers 2-4-2 --epochs 1
expect naive-double 0 'test accuracy' -- --train "$dir/two.csv" --test "$dir/two.csv" --layers 2-4-2 --epochs 2 \
    --double --backend naive --optim sgd --schedule step
expect bad-threads 2 "--threads: '65' is not a whole number in \[0, 64\]" -- --synthetic --threads 65
expect bad-threads-negative 2 "--threads: '-1' is not a whole number in \[0, 64\]" -- --synthetic --threads -1
# Two threads (fused SGD): the same separable problem is learnt as well.
expect threads 0 'test accuracy: (0\.9[0-9]*|1\.0000)' -- --train "$dir/two.csv" --test "$dir/two.csv" \
    --layers 2-8-2 --epochs 5 --batch 16 --optim sgd --lr 0.1 --threads 2
# Steps cut into chunks (784-300-10 at batch 256) on two threads: the same training twice
# gives the same model to the last bit; on one thread, the same accuracy within 0.01 (the
# products are cut differently, so they round differently).
run_threads() {
    "$bin" --synthetic --layers 784-300-10 --batch 256 --epochs 2 --optim sgd --threads "$1" --quiet \
        --save "$dir/threads-$2.bpm" 2>&1 | sed -n 's/^test accuracy: //p'
}
acc2=$(run_threads 2 a); acc2b=$(run_threads 2 b); acc1=$(run_threads 1 c)
if [ -n "$acc2" ] && [ -n "$acc1" ] && cmp -s "$dir/threads-a.bpm" "$dir/threads-b.bpm" &&
    awk -v a="$acc2" -v b="$acc1" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }'; then ok; else
    bad "threads: accuracy '$acc2' and '$acc2b' with 2 threads, '$acc1' with 1"; fi

# Models: save, load and go on training, a dtype mismatch, a corrupt file.
expect save 0 'model saved' -- --synthetic --layers 784-16-10 --epochs 1 --save "$dir/m.bpm"
expect load 0 'test accuracy' -- --synthetic --epochs 1 --load "$dir/m.bpm"
expect load-dtype 1 'the model is float; pass --float' -- --synthetic --epochs 1 --double --load "$dir/m.bpm"
# The loss comes with the model: an MSE model goes on learning one-hot targets without
# --loss, and a --loss that disagrees with a model is refused.
expect save-mse 0 'model saved' -- --synthetic --layers 784-16-10 --epochs 1 --loss mse --save "$dir/mse.bpm"
expect load-mse 0 'test accuracy' -- --synthetic --epochs 1 --load "$dir/mse.bpm"
expect load-loss-mismatch 1 '--loss mse: the loaded model has loss xent' -- --synthetic --epochs 1 --load "$dir/m.bpm" \
    --loss mse
expect logreg-loss 1 '--loss bce: the logistic regression has loss xent' -- --synthetic --logreg --loss bce --epochs 1
cp "$dir/m.bpm" "$dir/bad.bpm"
printf '\377' | dd of="$dir/bad.bpm" bs=1 seek=100 conv=notrunc status=none
expect load-corrupt 1 'CRC' -- --synthetic --epochs 1 --load "$dir/bad.bpm"
head -c 50 "$dir/m.bpm" > "$dir/short.bpm"
expect load-truncated 1 'bad file or data format' -- --synthetic --epochs 1 --load "$dir/short.bpm"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
