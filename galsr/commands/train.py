"""``galsr train``: train iSRCNN (or FSRCNN) on a dataset file and write an emulator file (training.train)."""


def register(subparsers):
    """Add the ``train`` sub-command to an argparse subparsers object."""
    p = subparsers.add_parser(
        "train", help="train the super-resolution emulator on a dataset (writes model.galsr)",
        description="Train a super-resolution network (default: iSRCNN with the thesis's sizes and recipe: L1 loss, "
                    "Adam lr 0.0035 betas (0.957, 0.929), batch 32, ReduceLROnPlateau factor 0.5 patience 10) on the "
                    "training split of a galsr dataset; the best-validation weights go to --out as an emulator "
                    "file, with OUT.ckpt (checkpoint every epoch, for --resume), OUT.log.csv, OUT.log.json and "
                    "OUT.loss.png.")
    p.add_argument("dataset", help="HDF5 dataset written by `galsr generate` (must be complete)")
    p.add_argument("--out", required=True, help="emulator file to write, e.g. model.galsr")
    p.add_argument("--config", help="JSON training config (keys: model, n0, ni, m, bicubic_skip, "
                                    "two_stage_upsampling, lr, beta1, beta2, batch_size, epochs, plateau_factor, "
                                    "plateau_patience, per_channel_images, log_channels) [thesis values]")
    p.add_argument("--epochs", type=int, help="total epochs (overrides the config; with --resume: continue to it)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and shuffling [0]")
    p.add_argument("--resume", action="store_true", help="continue exactly from OUT.ckpt if it exists")
    p.add_argument("--overwrite", action="store_true", help="train afresh over an existing --out and OUT.ckpt")
    p.add_argument("--threads", type=int, help="torch CPU threads [torch default]")
    p.add_argument("--max-train", type=int, help="use only the first N training rows")
    p.add_argument("--max-val", type=int, help="use only the first N validation rows")
    p.add_argument("--time-limit", type=float,
                   help="stop after the epoch during which this many minutes passed (resume later with --resume)")
    p.set_defaults(func=run)


def run(args):
    """Train; print the best validation L1 and the files written. Returns 0."""
    from galsr.training.train import load_config, train

    config = load_config(args.config) if args.config else None
    res = train(args.dataset, args.out, config, epochs=args.epochs, seed=args.seed, resume=args.resume,
                overwrite=args.overwrite, progress=True, max_train=args.max_train, max_val=args.max_val,
                num_threads=args.threads,
                time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit)
    m = res.val_metrics
    print(f"best validation L1 {res.best_val_l1:.6g} at epoch {res.best_epoch} of {len(res.history)}; "
          f"PSNR {m.get('psnr_db', float('nan')):.2f} dB")
    if "median_error" in m:
        print("median error: " + ", ".join(f"{c} {v:.4g} {m['error_units'][c]}" for c, v in m["median_error"].items()))
    print(f"wrote {res.out_path} (+ .ckpt, .log.csv, .log.json, .loss.png)")
    return 0
