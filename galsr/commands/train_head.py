"""``galsr train-head``: train the centre head of an emulator (its parameter-aware correction at galaxy centres)."""


def register(subparsers):
    p = subparsers.add_parser(
        "train-head", help="train an emulator's centre head (parameter-aware correction at galaxy centres)",
        description="Keep a trained emulator's network and learn, on the same dataset, a correction of its maps "
                    "in a crop around each galaxy's centre from the galaxy's parameters, with a prediction of the "
                    "error that remains. Then run `galsr calibrate` on the result.")
    p.add_argument("emulator", help="trained emulator file (*.galsr)")
    p.add_argument("dataset", help="the HDF5 dataset it was trained on")
    p.add_argument("--out", required=True, help="emulator file to write")
    p.add_argument("--epochs", type=int, default=200, help="passes over the training galaxies (default 200)")
    p.add_argument("--time-limit", type=float, help="stop after this many minutes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", type=int, default=20, help="crop side in HR pixels (default 20)")
    p.add_argument("--hidden", type=int, default=32, help="MLP width (default 32)")
    p.add_argument("--layers", type=int, default=2, help="MLP hidden layers (default 2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run)


def run(args):
    from galsr.training.centre_training import train_centre_head

    rec = train_centre_head(args.emulator, args.dataset, args.out, epochs=args.epochs, seed=args.seed,
                            time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit,
                            head={"crop": args.crop, "hidden": args.hidden, "layers": args.layers},
                            progress=True, overwrite=args.overwrite)
    print(f"wrote {args.out}: centre head trained {rec['epochs_run']} epochs, best {rec['best_epoch']} "
          f"(validation L1 over the crops {rec['best_val_l1_crop']:.5g}; network alone "
          f"{rec['network_val_l1_crop']:.5g})")
    return 0
