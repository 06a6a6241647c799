"""The experiment engine: every experiment of the project is a config under ``studies/``.

    sgmmq bench studies/smoke.yml --out /tmp/smoke      # config.py reads it, runner.py runs it
    sgmmq report /tmp/smoke                             # report.py -> /tmp/smoke/README.md

``config`` (the sweep, its checks and its runs), ``runner`` (resumable, process pool or Ray),
``record`` (the typed run file), ``report`` (section builders over ``statistics``, ``tables``
and ``figures``).
"""
