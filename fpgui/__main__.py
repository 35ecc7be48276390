from fpgui.cli import main

raise SystemExit(main())
