"""Multi-task reinforcement learning: seed 003 sec. 6.3 / Table 5, MT10 of Meta-World with Soft Actor-Critic.

- :mod:`.mt10`: the ten MT10 environments (metaworld, MuJoCo; headless), one per task, stepped together;
- :mod:`.buffer`: the replay buffer, one ring per task;
- :mod:`.sac`: multi-task SAC (actor, twin critics, target critics, per-task temperatures) whose per-task critic,
  actor and temperature losses are combined on the shared parameters by any ``mtl_core`` method;
- :mod:`.training`: one seeded, resumable run (a run directory of :mod:`mtl_pipelines.run`);
- :mod:`.study`: the report builder ``mt10_success`` of study ``003_table5``.

``metaworld`` is the optional extra ``rl`` of mtl-pipelines (``pip install 'mtl-pipelines[rl]'``); nothing here
imports it before an environment is built.
"""
