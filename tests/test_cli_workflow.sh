#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_cli_workflow.sh: backprop-train's workflow end to end: --standardize then --predict and
# --evaluate on raw data giving exactly the accuracy training printed; --val, --val-split and
# --early-stop with the kept parameters' loss equal to the lowest logged; --resume continuing
# to the same bits; --plot with a quote in its name. Usage: test_cli_workflow.sh PATH/TO/backprop-train
set -u
. "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh" "$1"

# Three classes in 2-D, far from zero mean and unit scale (so --standardize matters), label in
# column 0, with a header; and a noisy two-class set whose validation loss stops falling.
awk 'BEGIN { srand(3); print "label,x,y";
             for (i = 0; i < 400; i++) { c = i % 3; printf "%d,%.4f,%.4f\n", c,
                 50 * ((c == 1) - (c == 2)) + 30 * (rand() - 0.5), 100 + 20 * (c == 0) + 30 * (rand() - 0.5) } }' \
    > "$dir/three.csv"
awk 'BEGIN { srand(5); print "label,x,y";
             for (i = 0; i < 300; i++) { c = i % 2; printf "%d,%.4f,%.4f\n", c,
                 10 * ((c ? 0.5 : -0.5) + 1.5 * (rand() - 0.5)), 200 + 10 * (rand() - 0.5) } }' > "$dir/noisy.csv"
head -241 "$dir/noisy.csv" > "$dir/ntrain.csv"
{ head -1 "$dir/noisy.csv"; tail -60 "$dir/noisy.csv"; } > "$dir/nval.csv"

# (a) Train standardised, save; the classes --predict gives for the raw test data score exactly
# the "C/N" training printed, and --evaluate prints the same line.
train_out=$("$bin" --train "$dir/three.csv" --test "$dir/three.csv" --layers 2-8-3 --epochs 4 --batch 16 \
    --lr 0.01 --standardize --save "$dir/m.bpm" 2>&1)
acc_line=$(printf '%s\n' "$train_out" | grep '^test accuracy: ')
frac=$(printf '%s\n' "$acc_line" | sed -n 's/^test accuracy: [0-9.]* (\([0-9]*\/400\))$/\1/p')
if [ -n "$frac" ] && [ "${frac%/*}" -ge 300 ]; then ok; else bad "standardized training: '$acc_line'"; printf '%s\n' "$train_out"; fi
"$bin" --predict "$dir/three.csv" --load "$dir/m.bpm" --batch 16 --out "$dir/pred.csv" > "$dir/predict.out" 2>&1
rc=$?
counted=$(paste -d, <(tail -n +2 "$dir/three.csv" | cut -d, -f1) <(tail -n +2 "$dir/pred.csv" | cut -d, -f1) |
          awk -F, '$1 == $2 { c++ } END { printf "%d/%d", c, NR }')
if [ "$rc" -eq 0 ] && [ "$counted" = "$frac" ]; then ok; else bad "predict: exit $rc, $counted correct, training said $frac"; cat "$dir/predict.out"; fi
# The rows: a header, the class, three probabilities summing to 1, the class their arg-max.
if head -1 "$dir/pred.csv" | grep -qx 'class,p0,p1,p2' && [ "$(wc -l < "$dir/pred.csv")" -eq 401 ] &&
   tail -n +2 "$dir/pred.csv" | awk -F, '{ s = $2 + $3 + $4; m = 2; for (j = 3; j <= 4; j++) if ($j > $m) m = j;
        if (NF != 4 || s < 0.9999 || s > 1.0001 || m - 2 != $1) bad++ } END { exit bad > 0 }'; then ok; else
    bad "predict rows:"; head -3 "$dir/pred.csv"; fi
# Without a label column (--csv-label -1) and to standard output: the same predictions.
cut -d, -f2- "$dir/three.csv" > "$dir/unlabelled.csv"
if "$bin" --predict "$dir/unlabelled.csv" --csv-label -1 --load "$dir/m.bpm" --batch 16 2>&1 | cmp -s - "$dir/pred.csv"; then
    ok; else bad "predict without labels differs"; fi
expect predict-width 1 'the model takes 2 inputs but .*three.csv has 3 features' \
    -- --predict "$dir/three.csv" --csv-label -1 --load "$dir/m.bpm"
# IDX images without labels: three 1x2 images, three rows of predictions.
printf '\0\0\10\3\0\0\0\3\0\0\0\1\0\0\0\2\1\2\3\4\5\6' > "$dir/img.idx"
if [ "$("$bin" --predict "$dir/img.idx" --load "$dir/m.bpm" 2>&1 | tail -n +2 | grep -cE '^[0-2](,[0-9.e+-]+){3}$')" -eq 3 ]; then
    ok; else bad "predict on IDX images alone"; "$bin" --predict "$dir/img.idx" --load "$dir/m.bpm"; fi
eval_out=$("$bin" --evaluate --load "$dir/m.bpm" --test "$dir/three.csv" --batch 16 2>&1)
if printf '%s\n' "$eval_out" | grep -qxF "$acc_line" &&
   printf '%s\n' "$eval_out" | grep -Eq '^test loss: [0-9]\.[0-9]{8,}' &&
   [ "$(printf '%s\n' "$eval_out" | awk '/^confusion/ { on = 1; next } on && NF == 4 && $1 ~ /^[0-9]$/ { s += $2 + $3 + $4; d += $($1 + 2) }
        END { printf "%d/%d", d, s }')" = "$frac" ]; then ok; else
    bad "evaluate, against training's '$acc_line':"; printf '%s\n' "$eval_out"; fi

# (b) Early stopping on a validation file: it stops before the last epoch, and the saved model's
# loss on that file is the lowest validation loss logged, to the last of 17 digits.
"$bin" --train "$dir/ntrain.csv" --layers 2-16-2 --epochs 40 --batch 8 --lr 0.01 --schedule constant --standardize \
    --val "$dir/nval.csv" --early-stop 3 --log "$dir/es.csv" --save "$dir/es.bpm" > "$dir/es.out" 2>&1
rc=$?
epochs=$(($(wc -l < "$dir/es.csv") - 1))
best=$(tail -n +2 "$dir/es.csv" | awk -F, 'NR == 1 || $7 + 0 < b + 0 { b = $7 } END { print b }')
if [ "$rc" -eq 0 ] && [ "$epochs" -lt 40 ] && grep -q "^early stop after epoch $epochs: no lower validation loss in 3 epochs" "$dir/es.out" &&
   grep -q "^best epoch: [0-9]*, validation loss $best " "$dir/es.out"; then ok; else
    bad "early stop: exit $rc after $epochs epochs, best $best"; cat "$dir/es.out"; fi
eloss=$("$bin" --evaluate --load "$dir/es.bpm" --test "$dir/nval.csv" --batch 8 2>&1 | sed -n 's/^test loss: //p')
if [ -n "$best" ] && [ "$eloss" = "$best" ]; then ok; else bad "early stop: evaluate's loss '$eloss', lowest logged '$best'"; fi
# --val-split: the last 20% of the rows held out, the same as giving them as --val.
"$bin" --train "$dir/noisy.csv" --layers 2-16-2 --epochs 40 --batch 8 --lr 0.01 --schedule constant --standardize \
    --val-split 0.2 --early-stop 3 --log "$dir/split.csv" --save "$dir/split.bpm" > "$dir/split.out" 2>&1
if grep -q '^      60 validation samples$' "$dir/split.out" && [ -s "$dir/split.csv" ] &&
   [ "$(cut -d, -f1-4,7,8 "$dir/split.csv")" = "$(cut -d, -f1-4,7,8 "$dir/es.csv")" ]; then ok; else
    bad "--val-split 0.2 differs from --val of the last 60 rows:"; cat "$dir/split.out"; fi
# Without early stopping a validation set changes nothing but the report: the best epoch's
# parameters are kept, so the saved model's validation loss is again the lowest logged.
"$bin" --train "$dir/ntrain.csv" --layers 2-16-2 --epochs 12 --batch 8 --lr 0.01 --schedule constant \
    --val "$dir/nval.csv" --log "$dir/nv.csv" --save "$dir/nv.bpm" --quiet > /dev/null 2>&1
best=$(tail -n +2 "$dir/nv.csv" | awk -F, 'NR == 1 || $7 + 0 < b + 0 { b = $7 } END { print b }')
eloss=$("$bin" --evaluate --load "$dir/nv.bpm" --test "$dir/nval.csv" --batch 8 2>&1 | sed -n 's/^test loss: //p')
if [ "$(($(wc -l < "$dir/nv.csv") - 1))" -eq 12 ] && [ -n "$best" ] && [ "$eloss" = "$best" ]; then ok; else
    bad "validation without early stop: evaluate's loss '$eloss', lowest logged '$best'"; fi

# --resume: 2 epochs, saved, resumed to 4, gives the bits of 4 epochs in one go.
common=(--train "$dir/three.csv" --layers 2-8-3 --batch 16 --lr 0.01 --schedule constant --standardize --quiet)
"$bin" "${common[@]}" --epochs 2 --save "$dir/r2.bpm" > /dev/null 2>&1
"$bin" --train "$dir/three.csv" --batch 16 --quiet --load "$dir/r2.bpm" --resume --epochs 4 --save "$dir/r4.bpm" > /dev/null 2>&1
"$bin" "${common[@]}" --epochs 4 --save "$dir/s4.bpm" > /dev/null 2>&1
if [ -s "$dir/r4.bpm" ] && cmp -s "$dir/r4.bpm" "$dir/s4.bpm"; then ok; else bad "resume: 2 + 2 epochs differ from 4"; fi
expect resume-done 1 '--resume: .* has done 4 epochs already' -- --train "$dir/three.csv" --load "$dir/r4.bpm" \
    --resume --epochs 4

"$bin" --train "$dir/three.csv" --logreg --newton --quiet --save "$dir/newton.bpm" > /dev/null 2>&1
expect resume-no-optimizer 1 '--resume: .*newton.bpm holds no optimizer state' -- --train "$dir/three.csv" \
    --load "$dir/newton.bpm" --resume --epochs 2

# MSE: --evaluate reports the RMSE and the accuracy training printed; --predict the outputs.
out=$("$bin" --train "$dir/three.csv" --test "$dir/three.csv" --layers 2-8-3 --loss mse --epochs 10 --lr 0.01 --batch 16 \
    --standardize --save "$dir/mse.bpm" 2>&1)
acc_line=$(printf '%s\n' "$out" | grep '^test accuracy: ')
eval_out=$("$bin" --evaluate --load "$dir/mse.bpm" --test "$dir/three.csv" --batch 16 2>&1)
if [ -n "$acc_line" ] && printf '%s\n' "$eval_out" | grep -qxF "$acc_line" &&
   printf '%s\n' "$eval_out" | grep -Eq '^test rmse: 0\.[0-9]{8,}'; then ok; else bad "mse evaluate:"; printf '%s\n' "$eval_out"; fi
if "$bin" --predict "$dir/three.csv" --load "$dir/mse.bpm" | head -1 | grep -qx 'y0,y1,y2'; then ok; else bad "mse predict header"; fi

# --plot with a quote in the file name (and the temporary log and script in $TMPDIR).
if command -v gnuplot >/dev/null 2>&1; then
    mkdir "$dir/tmp"
    out=$(cd "$dir" && TMPDIR="$dir/tmp" "$bin" --train three.csv --layers 2-8-3 --epochs 2 --batch 16 --val-split 0.25 \
        --plot "it's.png" 2>&1)
    if [ -s "$dir/it's.png" ] && [ "$(head -c 4 "$dir/it's.png" | od -An -c | tr -d ' ')" = '211PNG' ] &&
       [ -z "$(ls -A "$dir/tmp")" ]; then ok; else bad "--plot \"it's.png\":"; printf '%s\n' "$out"; ls -la "$dir" "$dir/tmp"; fi
else
    echo "gnuplot is not installed: the --plot test is skipped (Debian: gnuplot-nox)"
fi
# Without gnuplot on the PATH, --plot is a note, not an error, and leaves no temporary file.
mkdir -p "$dir/tmp2"
out=$(TMPDIR="$dir/tmp2" PATH=/nonexistent "$bin" --train "$dir/three.csv" --layers 2-8-3 --epochs 1 --plot "$dir/n.png" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q 'gnuplot is not installed; --plot .* skipped' &&
   [ -z "$(ls -A "$dir/tmp2")" ] && [ ! -e "$dir/n.png" ]; then ok; else bad "--plot without gnuplot: exit $rc"; printf '%s\n' "$out"; fi

echo "cli-workflow: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
