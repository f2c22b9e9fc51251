from lwsbuild.cli.main import main

raise SystemExit(main())
