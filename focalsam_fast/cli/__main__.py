"""``python -m focalsam_fast.cli``: the ``focalsam`` command (what torchrun and ``focalsam train
--nproc N`` start on every rank: ``torchrun --nproc_per_node N -m focalsam_fast.cli train ...``)."""

from focalsam_fast.cli.main import main

raise SystemExit(main())
