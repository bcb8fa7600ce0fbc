"""Super-resolution networks (iSRCNN, FSRCNN, bicubic), their training loop and BOHB tuning."""
