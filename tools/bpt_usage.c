/* SPDX-License-Identifier: MIT */
/* bpt_usage.c: backprop-train's --help text and --version line. */
#include <stdio.h>
#include "bpt.h"

#ifndef BP_VERSION
#define BP_VERSION "unknown"
#endif

void version(FILE *f)
{
    fprintf(f, "backprop-train %s\n", BP_VERSION);
}

void usage(FILE *f)
{
    static const char *const sections[] = {
"usage: backprop-train [options]\n"
"       backprop-train --predict FILE --load MODEL [--out FILE.csv]\n"
"       backprop-train --evaluate --load MODEL --test SPEC\n"
"Trains a dense network by backpropagation on BLAS, or a multinomial logistic\n"
"regression, and reports loss and accuracy (or RMSE) after every epoch; or\n"
"predicts with a saved model, or evaluates one on labelled data.\n"
"Options take their value as '--opt VALUE' or '--opt=VALUE'.\n"
"\n",
"Data\n"
"  --train SPEC         training data: IMAGES,LABELS (IDX files, gzip or plain)\n"
"                       or FILE.csv (numeric; see --csv-label)\n"
"  --test SPEC          test data, same forms (optional)\n"
"  --val SPEC           validation data, same forms: loss and metric per epoch,\n"
"                       the best epoch's parameters kept at the end\n"
"  --val-split F        hold out the last fraction F (0 < F < 1) of the training\n"
"                       data as the validation set instead\n"
"  --synthetic          a generated 10-class data set of 28x28 images instead\n"
"                       (6000 train / 1000 test): for machines without data\n"
"  --csv-label K        CSV column holding the class label (default 0; -1: none)\n"
"  --csv-targets K,...  CSV columns (0-based) holding real targets: a regression\n"
"                       (--loss mse, the default then; the last --layers width\n"
"                       is the number of targets); the other columns are the\n"
"                       features, there is no label column\n"
"  --csv-header yes|no|auto   first CSV line is a header (default auto)\n"
"  --raw-pixels         keep IDX pixels as 0..255 (default: scaled to [0, 1])\n"
"  --standardize        z-score every feature with the training set's statistics\n"
"                       (kept in the model, applied to every input it sees)\n"
"\n",
"Model\n"
"  --layers A-B-...-K   widths from inputs to outputs (default 784-512-256-10;\n"
"                       the first must match the data, the last the classes\n"
"                       or targets)\n"
"  --act NAME[:ALPHA]   hidden activation: identity sigmoid tanh relu leaky_relu\n"
"                       elu gelu gelu_tanh softplus (default relu; leaky_relu:0.01)\n"
"  --loss xent|bce|mse|lsq  softmax cross-entropy with labels (default), sigmoid\n"
"                       binary cross-entropy, or a squared error with targets:\n"
"                       mse, the mean over all outputs (PyTorch's), or lsq, half\n"
"                       the sum over a sample's outputs (least squares)\n"
"  --init NAME          glorot glorot_normal he he_normal orthogonal (default:\n"
"                       he for the ReLU family, glorot otherwise)\n"
"  --logreg             multinomial logistic regression (one layer: inputs-K)\n"
"  --newton             fit the logistic regression by Newton/IRLS (small models\n"
"                       only; see --ridge) instead of first-order steps\n"
"  --ridge R            Newton's ridge term (default 1e-4)\n"
"  --float | --double   precision (default float)\n"
"  --load FILE          start from a saved model instead of a new one\n"
"  --resume             with --load: go on with the saved optimizer and training\n"
"                       state up to --epochs epochs in all\n"
"  --save FILE          save the trained model, its optimizer and training state\n"
"                       (atomically)\n"
"\n",
"Training\n"
"  --optim NAME         sgd momentum nesterov adam adamw (default adam), or lm:\n"
"                       Levenberg-Marquardt on the whole training set (squared\n"
"                       errors only; --epochs iterations at most, --early-stop\n"
"                       its validation patience, default 6)\n"
"  --lr X               learning rate (default 0.001 for adam/adamw, 0.01 else)\n"
"  --momentum X --beta1 X --beta2 X --eps X --wd X   optimizer parameters\n"
"                       (PyTorch's defaults; --wd: L2, decoupled for adamw)\n"
"  --schedule NAME      constant, step or cosine (default cosine, to lr/100\n"
"                       over all epochs)\n"
"  --gamma X --step-epochs N   step schedule: lr x gamma every N epochs\n"
"  --lr-min X           cosine schedule's final rate\n"
"  --batch N            mini-batch size (default 64; --predict and --evaluate\n"
"                       stream in batches of this size)\n"
"  --micro-batch N      planned micro-batch (default: the batch size)\n"
"  --epochs N           epochs (default 30)\n"
"  --early-stop K       stop after K epochs without a lower validation loss\n"
"                       (needs --val or --val-split)\n"
"  --seed S             initialisation and shuffling seed (default 1)\n"
"  --no-shuffle         every epoch in the data's order (default: a fresh\n"
"                       permutation of the samples per epoch, from --seed)\n"
"  --threads N          the network's threads (bp_net_set_threads; default and 0:\n"
"                       one per CPU of the affinity mask, at most OMP_NUM_THREADS\n"
"                       and OPENBLAS_NUM_THREADS; 1: the calling thread alone)\n"
"  --backend blas|naive kernels to run on (default blas)\n"
"\n",
"Predicting and evaluating (with --load)\n"
"  --predict SPEC       write the predictions for SPEC's samples as CSV: a header,\n"
"                       then per row the class and each class's probability (the\n"
"                       outputs for an MSE model); labels in SPEC are ignored\n"
"  --out FILE.csv       --predict's output (default: standard output)\n"
"  --evaluate           print the loss, accuracy and confusion matrix (RMSE for\n"
"                       MSE; loss and RMSE alone with --csv-targets) of the\n"
"                       model on --test\n"
"\n",
"Output\n"
"  --log FILE.csv       one row per epoch: epoch,loss,train,test,seconds,\n"
"                       samples_per_s,val_loss,val\n"
"  --plot FILE.png      learning curves through gnuplot (when installed)\n"
"  --quiet              only the final lines\n"
"  --version            the program's version\n"
"  --help               this text\n"
"\n",
"Under MPI (mpiexec -np N backprop-train ...; builds with MPI)\n"
"  Data-parallel training: every rank reads the data and keeps its share of\n"
"  every global batch of --batch samples, the ranks' gradients are summed before\n"
"  each step, and rank 0 alone prints and writes files. Unshuffled, N ranks give\n"
"  the single run's results up to rounding. --evaluate is summed over the ranks,\n"
"  --predict runs on rank 0 alone; --optim lm and --newton are refused.\n"
"  --threads N: N threads per rank (default: the rank's share of its cores).\n"
"\n",
"A terminal gets a progress bar per epoch; otherwise one line per epoch. The\n"
"run ends with 'test accuracy: X (C/N)' (with test data; 'test rmse: X' with\n"
"--csv-targets) and 'train time: S s'.\n"
"Exit status: 0 done, 1 a data, model or file error, 2 a usage error.\n"};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        fputs(sections[i], f);
}
