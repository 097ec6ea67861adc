from tritonfleet.cli import main

raise SystemExit(main())
