from jetfm_coffea.cli import main

main()
