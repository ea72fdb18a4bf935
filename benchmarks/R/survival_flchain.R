# R's survival::coxph on the folds of benchmarks/survival_flchain.py (run by that script).
#
#   Rscript benchmarks/R/survival_flchain.R IN.csv HORIZONS OUT_PREFIX
#
# IN.csv: patient_id, fold (0-based, the folds pmed used), futime, death (0/1) and the features
# (age, creatinine, flc_grp, kappa, lambda, mgus, sample_yr, sex). HORIZONS: comma-separated
# days. Per fold, as the pmed `cox` pipeline does it: creatinine's missing values get the
# training fold's median plus a 0/1 missingness indicator; sex and mgus are factors (first level
# the reference); coxph with Efron ties (R's default). Writes OUT_PREFIX_oof.csv (patient_id,
# fold, lp, surv_<h>...) and OUT_PREFIX_timing.csv (elapsed seconds of the 5 fits + predictions,
# Harrell's C of the pooled out-of-fold linear predictor from survival::concordance). Only base R
# and survival: no jsonlite.
suppressPackageStartupMessages(library(survival))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) stop("usage: Rscript survival_flchain.R IN.csv HORIZONS OUT_PREFIX")
d <- read.csv(args[1], stringsAsFactors = FALSE)
hs <- as.numeric(strsplit(args[2], ",")[[1]])
prefix <- args[3]
d$sex <- factor(d$sex)
d$mgus <- factor(d$mgus)

prepare <- function(part, median_creat) {
  part$creatinine_missing <- as.integer(is.na(part$creatinine))
  part$creatinine[is.na(part$creatinine)] <- median_creat
  part
}

folds <- sort(unique(d$fold))
out <- vector("list", length(folds))
t0 <- proc.time()[["elapsed"]]
for (k in seq_along(folds)) {
  train <- d[d$fold != folds[k], ]
  test <- d[d$fold == folds[k], ]
  m <- median(train$creatinine, na.rm = TRUE)
  train <- prepare(train, m)
  test <- prepare(test, m)
  fit <- coxph(Surv(futime, death) ~ age + creatinine + creatinine_missing + flc_grp + kappa + lambda +
                 sample_yr + sex + mgus, data = train, ties = "efron")
  lp <- predict(fit, newdata = test, type = "lp")
  sf <- survfit(fit, newdata = test)
  s <- t(summary(sf, times = hs, extend = TRUE)$surv)  # n_test x length(hs)
  res <- data.frame(patient_id = test$patient_id, fold = test$fold, lp = as.numeric(lp))
  for (j in seq_along(hs)) res[[paste0("surv_", hs[j])]] <- s[, j]
  out[[k]] <- res
}
elapsed <- proc.time()[["elapsed"]] - t0
oof <- do.call(rbind, out)
oof <- merge(oof, d[, c("patient_id", "futime", "death")], by = "patient_id")
cc <- concordance(Surv(futime, death) ~ lp, data = oof, reverse = TRUE)$concordance
write.csv(oof[, c("patient_id", "fold", "lp", paste0("surv_", hs))], paste0(prefix, "_oof.csv"), row.names = FALSE)
write.csv(data.frame(elapsed_s = elapsed, harrell_c = cc, r_version = R.version.string,
                     survival_version = as.character(packageVersion("survival"))),
          paste0(prefix, "_timing.csv"), row.names = FALSE)
