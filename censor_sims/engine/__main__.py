from censor_sims.engine.engine import main

main()
